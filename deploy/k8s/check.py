#!/usr/bin/env python3
"""Static checks of the Kubernetes manifests in deploy/k8s (and the Grafana dashboard).

    python3 deploy/k8s/check.py        (from anywhere; needs PyYAML: pip install pyyaml)

Checks that every YAML file parses; that kustomization.yaml lists existing files and no
Secret; that the gateway's ConfigMap is generated from deploy/nginx/zimmer.conf.template (the
one template, no copy); that every
Deployment has resources, startup/liveness/readiness probes, a hardened securityContext, a
ClusterIP Service, an autoscaling/v2 HorizontalPodAutoscaler and a PodDisruptionBudget that
match it; the service-specific settings (ports, probes paths, env, Secret keys, scrape
annotations, grace period, each service's own internal credential and INTERNAL_CALLERS); the
migration Job; the gateway's upstreams; the Ingress backend; the NetworkPolicies (default
deny; each service's port reachable only from the gateway and its named internal callers);
and that deploy/grafana/zimmer-dashboard.json is valid JSON using the Zimmer metrics. When
kubectl is on PATH it also renders the kustomization ("kubectl kustomize").
Exits 1 with one line per problem.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("check.py: PyYAML is needed (python3 -m pip install pyyaml)")

HERE = Path(__file__).resolve().parent
DEPLOY = HERE.parent
NAMESPACE = "zimmer"
SECRET = "zimmer-secrets"
INTERNAL_TOKEN_KEYS = {f"INTERNAL_TOKEN_{s}" for s in ("AUTH", "MARKETPLACE", "BILLING", "SUPPORT", "ADMIN")}
SECRET_KEYS = INTERNAL_TOKEN_KEYS | {
    "INTERNAL_CALLERS_AUTH",
    "INTERNAL_CALLERS_ADMIN_ONLY",
    "jwt-ed25519.pem",
    "TWOFA_ENCRYPTION_KEY",
    "OPENAI_KEYS_ENCRYPTION_KEY",
    "BOT_TOKENS_ENCRYPTION_KEY",
    "SMTP_URL",
    "ZARINPAL_MERCHANT_ID",
    "DATABASE_URL",
    "AMQP_URL",
    "REDIS_URL",
}
# service -> (port, binary, extra Secret keys it must get)
SERVICES = {
    "auth": (8001, "zimmer-auth", {"TWOFA_ENCRYPTION_KEY", "jwt-ed25519.pem", "SMTP_URL",
                                   "INTERNAL_TOKEN_AUTH", "INTERNAL_CALLERS_AUTH"}),
    "marketplace": (8002, "zimmer-marketplace", {"INTERNAL_TOKEN_MARKETPLACE", "BOT_TOKENS_ENCRYPTION_KEY",
                                                 "INTERNAL_CALLERS_ADMIN_ONLY"}),
    "billing": (8003, "zimmer-billing", {"ZARINPAL_MERCHANT_ID", "INTERNAL_TOKEN_BILLING",
                                         "INTERNAL_CALLERS_ADMIN_ONLY"}),
    "support": (8004, "zimmer-support", {"INTERNAL_TOKEN_SUPPORT", "INTERNAL_CALLERS_ADMIN_ONLY"}),
    "admin": (8005, "zimmer-admin", {"OPENAI_KEYS_ENCRYPTION_KEY", "INTERNAL_TOKEN_ADMIN"}),
}
# Who calls whose /internal API (and, for auth, the JWKS): the only pods besides the gateway
# that may reach a service's port.
INTERNAL_CALLERS = {
    "auth": {"admin", "marketplace", "billing", "support"},
    "marketplace": {"admin"},
    "billing": {"admin"},
    "support": {"admin"},
    "admin": set(),
}
# Where each service's INTERNAL_CALLERS comes from: a Secret key, or the literal "none".
CALLERS_SOURCE = {
    "auth": "INTERNAL_CALLERS_AUTH",
    "marketplace": "INTERNAL_CALLERS_ADMIN_ONLY",
    "billing": "INTERNAL_CALLERS_ADMIN_ONLY",
    "support": "INTERNAL_CALLERS_ADMIN_ONLY",
    "admin": None,
}
# Prometheus may scrape every service port from this namespace (network-policies.yaml).
MONITORING_NAMESPACE = "monitoring"
COMMON_SECRET_ENV = {"DATABASE_URL", "REDIS_URL", "AMQP_URL"}
NOT_LISTED = {"secret.example.yaml", "backing-services.example.yaml"}
DRAIN_SECONDS = 30

errors: list[str] = []


def err(msg: str) -> None:
    errors.append(msg)


def load_yaml_files() -> dict[str, list[dict]]:
    out = {}
    for path in sorted(HERE.glob("*.yaml")) + sorted(HERE.glob("*.yml")):
        try:
            with path.open(encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            err(f"{path.name}: YAML does not parse: {e}")
            continue
        for i, d in enumerate(docs):
            if not isinstance(d, dict):
                err(f"{path.name}: document {i} is not a mapping")
        out[path.name] = docs
    return out


def parse_env_file(path: Path) -> dict[str, str]:
    env = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            err(f"{path.name}:{n}: not KEY=VALUE")
            continue
        k, v = line.split("=", 1)
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", k):
            err(f"{path.name}:{n}: bad variable name {k!r}")
        env[k] = v
    return env


def check_kustomization(files: dict[str, list[dict]]) -> tuple[list[dict], dict[str, str]]:
    docs = files.get("kustomization.yaml")
    if not docs:
        err("kustomization.yaml: missing")
        return [], {}
    k = docs[0]
    if k.get("namespace") != NAMESPACE:
        err(f"kustomization.yaml: namespace must be {NAMESPACE}")
    resources = k.get("resources") or []
    objects: list[dict] = []
    for r in resources:
        if r in NOT_LISTED:
            err(f"kustomization.yaml: {r} is an example and must not be listed")
        if not (HERE / r).is_file():
            err(f"kustomization.yaml: resource {r} does not exist")
            continue
        objects.extend(files.get(r, []))
    for name in files:
        if name != "kustomization.yaml" and name not in resources and name not in NOT_LISTED:
            err(f"{name}: not listed in kustomization.yaml")
    for name in NOT_LISTED:
        if name not in files:
            err(f"{name}: missing")
    for o in objects:
        if o.get("kind") == "Secret":
            err(f"kustomization.yaml: lists a Secret ({o['metadata']['name']}); only references are allowed")
    if k.get("secretGenerator"):
        err("kustomization.yaml: no secretGenerator; the Secret is created out of band")

    config: dict[str, str] = {}
    generated = set()
    for g in k.get("configMapGenerator") or []:
        generated.add(g["name"])
        for f in g.get("files") or []:
            src = f.split("=", 1)[-1]
            if not (HERE / src).is_file():
                err(f"kustomization.yaml: configMapGenerator {g['name']}: {src} missing")
        for f in g.get("envs") or []:
            if not (HERE / f).is_file():
                err(f"kustomization.yaml: configMapGenerator {g['name']}: {f} missing")
            elif g["name"] == "zimmer-config":
                config.update(parse_env_file(HERE / f))
    for needed in ("zimmer-config", "zimmer-gateway-main", "zimmer-gateway-templates"):
        if needed not in generated:
            err(f"kustomization.yaml: configMapGenerator {needed} missing")
    if not any(i.get("name") == "zimmer" for i in k.get("images") or []):
        err("kustomization.yaml: images: entry for the zimmer image missing")

    # The gateway renders deploy/nginx's own template (no copy to keep equal).
    templates = next((g.get("files") or [] for g in k.get("configMapGenerator") or []
                      if g["name"] == "zimmer-gateway-templates"), [])
    if "zimmer.conf.template=../nginx/zimmer.conf.template" not in templates:
        err("kustomization.yaml: zimmer-gateway-templates must take "
            "zimmer.conf.template=../nginx/zimmer.conf.template")
    if (HERE / "gateway" / "zimmer.conf.template").exists():
        err("gateway/zimmer.conf.template: remove the copy; the generator reads deploy/nginx's")
    return objects, config


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o.get("kind") == kind}


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def env_map(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env") or []}


def check_secret_refs(where: str, pod: dict) -> set[str]:
    keys = set()
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                if ref.get("name") != SECRET:
                    err(f"{where}: {e['name']} refers to Secret {ref.get('name')}, not {SECRET}")
                if ref.get("key") not in SECRET_KEYS:
                    err(f"{where}: {e['name']} uses unknown Secret key {ref.get('key')}")
                keys.add(ref.get("key"))
            elif "value" in e and e["name"] in SECRET_KEYS:
                err(f"{where}: {e['name']} has a literal value; it belongs in the Secret")
        for src in c.get("envFrom") or []:
            if "secretRef" in src:
                err(f"{where}: envFrom secretRef; reference single keys instead")
    for v in pod.get("volumes") or []:
        if "secret" in v:
            if v["secret"].get("secretName") != SECRET:
                err(f"{where}: volume {v['name']} uses Secret {v['secret'].get('secretName')}")
            for item in v["secret"].get("items") or []:
                if item["key"] not in SECRET_KEYS:
                    err(f"{where}: volume {v['name']} uses unknown Secret key {item['key']}")
                keys.add(item["key"])
    return keys


def check_pod_hardening(where: str, pod: dict) -> None:
    psc = pod.get("securityContext") or {}
    if pod.get("automountServiceAccountToken") is not False:
        err(f"{where}: automountServiceAccountToken should be false")
    for c in pod.get("containers", []):
        sc = c.get("securityContext") or {}
        cw = f"{where}/{c['name']}"
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            err(f"{cw}: runAsNonRoot missing")
        if sc.get("readOnlyRootFilesystem") is not True:
            err(f"{cw}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            err(f"{cw}: allowPrivilegeEscalation must be false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            err(f"{cw}: capabilities must drop ALL")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            err(f"{cw}: seccompProfile RuntimeDefault missing")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(part) or {}):
                    err(f"{cw}: resources.{part}.{r} missing")


def container_port(c: dict, name_or_number) -> int | None:
    for p in c.get("ports") or []:
        if name_or_number in (p.get("name"), p.get("containerPort")):
            return p["containerPort"]
    return None


def check_workloads(objects: list[dict], config: dict[str, str]) -> None:
    deployments = by_kind(objects, "Deployment")
    services = by_kind(objects, "Service")
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    pdbs = by_kind(objects, "PodDisruptionBudget")
    config_refs = set()

    for name in list(SERVICES) + ["gateway"]:
        if name not in deployments:
            err(f"Deployment {name} missing")

    for name, d in deployments.items():
        w = f"Deployment {name}"
        spec = d["spec"]
        tmpl = spec["template"]
        pod = tmpl["spec"]
        labels = tmpl["metadata"].get("labels") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        if not selects(sel, labels):
            err(f"{w}: selector does not match the pod labels")
        if "replicas" in spec and spec["replicas"] < 2:
            err(f"{w}: fewer than 2 replicas")
        check_pod_hardening(w, pod)
        c = pod["containers"][0]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe not in c:
                err(f"{w}: {probe} missing")
        for src in c.get("envFrom") or []:
            if "configMapRef" in src:
                config_refs.add(src["configMapRef"]["name"])

        # Service
        svc = [s for s in services.values() if selects(s["spec"].get("selector") or {}, labels)]
        if len(svc) != 1:
            err(f"{w}: expected exactly one Service selecting it, found {len(svc)}")
        else:
            s = svc[0]
            if s["spec"].get("type", "ClusterIP") != "ClusterIP":
                err(f"Service {s['metadata']['name']}: must be ClusterIP")
            for p in s["spec"].get("ports") or []:
                if container_port(c, p.get("targetPort", p["port"])) is None:
                    err(f"Service {s['metadata']['name']}: targetPort {p.get('targetPort')} is not a container port")
        # HPA
        hpa = [h for h in hpas.values() if h["spec"]["scaleTargetRef"].get("name") == name
               and h["spec"]["scaleTargetRef"].get("kind") == "Deployment"]
        if len(hpa) != 1:
            err(f"{w}: expected one HorizontalPodAutoscaler, found {len(hpa)}")
        else:
            h = hpa[0]
            if h.get("apiVersion") != "autoscaling/v2":
                err(f"HPA {name}: apiVersion must be autoscaling/v2")
            if h["spec"].get("minReplicas", 1) < 2:
                err(f"HPA {name}: minReplicas must be at least 2")
            if h["spec"]["maxReplicas"] < max(h["spec"].get("minReplicas", 1), 2):
                err(f"HPA {name}: maxReplicas below minReplicas")
            cpu = [m for m in h["spec"].get("metrics") or []
                   if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"]
            if not cpu or cpu[0]["resource"]["target"].get("averageUtilization") != 70:
                err(f"HPA {name}: CPU target of 70% missing")
        # PDB
        pdb = [p for p in pdbs.values() if selects(p["spec"].get("selector", {}).get("matchLabels") or {}, labels)]
        if len(pdb) != 1:
            err(f"{w}: expected one PodDisruptionBudget, found {len(pdb)}")
        elif pdb[0]["spec"].get("minAvailable") != 1:
            err(f"PDB {pdb[0]['metadata']['name']}: minAvailable must be 1")

        if name in SERVICES:
            check_zimmer_service(name, d, c, pod, config)
        elif name == "gateway":
            check_gateway(d, c, services)

    for o in objects:
        if o.get("kind") == "Job":
            for src in o["spec"]["template"]["spec"]["containers"][0].get("envFrom") or []:
                if "configMapRef" in src:
                    config_refs.add(src["configMapRef"]["name"])
    if config_refs - {"zimmer-config"}:
        err(f"unknown ConfigMaps referenced: {sorted(config_refs - {'zimmer-config'})}")


def check_zimmer_service(name: str, d: dict, c: dict, pod: dict, config: dict[str, str]) -> None:
    w = f"Deployment {name}"
    port, binary, extra_keys = SERVICES[name]
    if c.get("image") != "zimmer":
        err(f"{w}: image must be 'zimmer' (set by kustomization images:)")
    if (c.get("command") or [])[:1] != [binary]:
        err(f"{w}: command must start with {binary}")
    if container_port(c, "http") != port:
        err(f"{w}: container port 'http' must be {port}")
    if c["livenessProbe"].get("httpGet", {}).get("path") != "/healthz":
        err(f"{w}: livenessProbe must GET /healthz")
    if c["readinessProbe"].get("httpGet", {}).get("path") != "/readyz":
        err(f"{w}: readinessProbe must GET /readyz")
    if c["startupProbe"].get("httpGet", {}).get("path") != "/healthz":
        err(f"{w}: startupProbe must GET /healthz")
    if pod.get("terminationGracePeriodSeconds", 30) < DRAIN_SECONDS + 5:
        err(f"{w}: terminationGracePeriodSeconds must be >= {DRAIN_SECONDS + 5}")
    env = env_map(c)
    for k, v in (("APP_ENV", "production"), ("HTTP_HOST", "0.0.0.0"), ("HTTP_PORT", str(port))):
        if env.get(k, {}).get("value", config.get(k)) != v:
            err(f"{w}: {k} must be {v}")
    keys = check_secret_refs(w, pod)
    missing = (COMMON_SECRET_ENV | extra_keys) - keys
    if missing:
        err(f"{w}: Secret keys not wired: {sorted(missing)}")
    unexpected = keys - COMMON_SECRET_ENV - extra_keys
    if unexpected:
        err(f"{w}: gets Secret keys it does not need: {sorted(unexpected)}")
    # Its own internal credential, and the callers it accepts.
    token_ref = (env.get("INTERNAL_API_TOKEN", {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if token_ref.get("key") != f"INTERNAL_TOKEN_{name.upper()}":
        err(f"{w}: INTERNAL_API_TOKEN must come from Secret key INTERNAL_TOKEN_{name.upper()}")
    callers = env.get("INTERNAL_CALLERS", {})
    want = CALLERS_SOURCE[name]
    if want is None:
        if callers.get("value") != "none":
            err(f"{w}: INTERNAL_CALLERS must be 'none' (nobody calls its internal API)")
    elif ((callers.get("valueFrom") or {}).get("secretKeyRef") or {}).get("key") != want:
        err(f"{w}: INTERNAL_CALLERS must come from Secret key {want}")
    key_file = env.get("JWT_PRIVATE_KEY_FILE", {}).get("value")
    if name == "auth":
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
        if not key_file or str(Path(key_file).parent) not in mounts:
            err(f"{w}: JWT_PRIVATE_KEY_FILE must point into the mounted Secret")
    elif key_file:
        # Only auth reads the private key (zimmer-config ignores it elsewhere); giving it to
        # another pod would only widen who can read the signing key.
        err(f"{w}: only auth may be given JWT_PRIVATE_KEY_FILE")
    ann = d["spec"]["template"]["metadata"].get("annotations") or {}
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(port) \
            or ann.get("prometheus.io/path") != "/metrics":
        err(f"{w}: prometheus.io scrape annotations missing or wrong")


def check_gateway(d: dict, c: dict, services: dict[str, dict]) -> None:
    w = "Deployment gateway"
    if not str(c.get("image", "")).startswith("nginx:"):
        err(f"{w}: must use the official nginx image")
    env = {k: e.get("value") for k, e in env_map(c).items()}
    if env.get("NGINX_ENVSUBST_FILTER") != "ZIMMER_":
        err(f"{w}: NGINX_ENVSUBST_FILTER must be ZIMMER_")
    listen = env.get("ZIMMER_LISTEN")
    if not listen or container_port(c, int(listen.rsplit(":", 1)[-1])) is None:
        err(f"{w}: ZIMMER_LISTEN is not a container port")
    if "ZIMMER_CORS_ORIGINS" not in env:
        err(f"{w}: ZIMMER_CORS_ORIGINS missing")
    for name, (port, _, _) in SERVICES.items():
        var = f"ZIMMER_{name.upper()}_SERVERS"
        want = f"server {name}.{NAMESPACE}.svc.cluster.local:{port};"
        if env.get(var) != want:
            err(f"{w}: {var} must be {want!r}, got {env.get(var)!r}")
        svc = services.get(name)
        if not svc or not any(p["port"] == port for p in svc["spec"]["ports"]):
            err(f"Service {name}: must expose port {port}")
    template = DEPLOY / "nginx" / "zimmer.conf.template"
    if template.is_file():
        needed = set(re.findall(r"\$\{(ZIMMER_[A-Z_]+)\}", template.read_text(encoding="utf-8")))
        missing = needed - set(env)
        if missing:
            err(f"{w}: template placeholders without a value: {sorted(missing)}")
    mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
    for path in ("/etc/nginx/templates", "/etc/nginx/conf.d", "/tmp"):
        if path not in mounts:
            err(f"{w}: {path} must be mounted")


def check_job(objects: list[dict]) -> None:
    jobs = by_kind(objects, "Job")
    job = jobs.get("zimmer-migrate")
    if not job:
        err("Job zimmer-migrate missing")
        return
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    if c.get("command") != ["zimmer-auth", "migrate"]:
        err("Job zimmer-migrate: command must be zimmer-auth migrate")
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        err("Job zimmer-migrate: restartPolicy must be Never or OnFailure")
    check_pod_hardening("Job zimmer-migrate", pod)
    keys = check_secret_refs("Job zimmer-migrate", pod)
    if not {"DATABASE_URL", "INTERNAL_TOKEN_AUTH"} <= keys:
        err("Job zimmer-migrate: needs DATABASE_URL and INTERNAL_TOKEN_AUTH from the Secret")
    if env_map(c).get("APP_ENV", {}).get("value") != "production":
        err("Job zimmer-migrate: APP_ENV must be production (the image has no default)")
    if env_map(c).get("JWT_PRIVATE_KEY_FILE", {}).get("value"):
        err("Job zimmer-migrate: must not be given JWT_PRIVATE_KEY_FILE")


def check_misc(objects: list[dict], config: dict[str, str], files: dict[str, list[dict]]) -> None:
    ns = by_kind(objects, "Namespace")
    if NAMESPACE not in ns:
        err(f"Namespace {NAMESPACE} missing")
    services = by_kind(objects, "Service")
    ingresses = by_kind(objects, "Ingress")
    if not ingresses:
        err("Ingress missing")
    for name, ing in ingresses.items():
        if not ing["spec"].get("tls"):
            err(f"Ingress {name}: tls missing")
        for rule in ing["spec"].get("rules") or []:
            for p in rule["http"]["paths"]:
                b = p["backend"]["service"]
                if b["name"] != "gateway" or b["name"] not in services:
                    err(f"Ingress {name}: must route to the gateway Service")
    for k in SECRET_KEYS:
        if k in config:
            err(f"config.env: {k} is a secret and belongs in {SECRET}")
    for k in ("JWKS_URL", "AUTH_INTERNAL_URL", "MARKETPLACE_INTERNAL_URL",
              "BILLING_INTERNAL_URL", "SUPPORT_INTERNAL_URL"):
        if k not in config:
            err(f"config.env: {k} missing")
    if config.get("JWKS_URL") != "http://auth:8001/.well-known/jwks.json":
        err("config.env: JWKS_URL must be http://auth:8001/.well-known/jwks.json")
    example = files.get("secret.example.yaml") or []
    if example:
        s = example[0]
        data = set((s.get("stringData") or {}) | (s.get("data") or {}))
        if s.get("kind") != "Secret" or s["metadata"].get("name") != SECRET or data != SECRET_KEYS:
            err(f"secret.example.yaml: must be Secret {SECRET} with keys {sorted(SECRET_KEYS)}")


def port_numbers(rule: dict) -> set:
    return {p.get("port") for p in rule.get("ports") or []}


def check_network_policies(objects: list[dict]) -> None:
    """Default deny, then each service's port only from the gateway and its named callers
    (plus Prometheus from the monitoring namespace); the gateway's from anywhere."""
    policies = list(by_kind(objects, "NetworkPolicy").values())
    if not policies:
        err("NetworkPolicies missing (network-policies.yaml)")
        return
    deny = [p for p in policies if p["spec"].get("podSelector") == {}
            and "Ingress" in (p["spec"].get("policyTypes") or []) and not p["spec"].get("ingress")]
    if not deny:
        err("NetworkPolicy: a default deny of ingress (podSelector: {}) is missing")
    for p in policies:
        if "Ingress" not in (p["spec"].get("policyTypes") or []):
            err(f"NetworkPolicy {p['metadata']['name']}: policyTypes must include Ingress")
    deployments = by_kind(objects, "Deployment")
    for name in list(SERVICES) + ["gateway"]:
        d = deployments.get(name)
        if not d:
            continue
        labels = d["spec"]["template"]["metadata"].get("labels") or {}
        # podSelector {} selects every pod of the namespace.
        mine = [p for p in policies if p["spec"].get("podSelector") == {}
                or selects((p["spec"].get("podSelector") or {}).get("matchLabels") or {}, labels)]
        rules = [r for p in mine for r in p["spec"].get("ingress") or []]
        w = f"NetworkPolicy for {name}"
        if not rules:
            err(f"{w}: none allows any ingress")
            continue
        if name == "gateway":
            c = d["spec"]["template"]["spec"]["containers"][0]
            if not any(container_port(c, "http") in port_numbers(r) for r in rules):
                err(f"{w}: the http port must be open to the Ingress controller")
            continue
        port = SERVICES[name][0]
        allowed = set()
        for r in rules:
            ports = port_numbers(r)
            if not ports or ports != {port}:
                err(f"{w}: every rule must name port {port} only, got {sorted(ports, key=str)}")
            peers = r.get("from")
            if not peers:
                err(f"{w}: a rule without 'from' opens port {port} to everybody")
                continue
            for peer in peers:
                if "ipBlock" in peer:
                    err(f"{w}: ipBlock peers are not expected")
                ns = (peer.get("namespaceSelector") or {}).get("matchLabels")
                pod = (peer.get("podSelector") or {}).get("matchLabels")
                if ns is not None:
                    if ns != {"kubernetes.io/metadata.name": MONITORING_NAMESPACE} or pod:
                        err(f"{w}: only the {MONITORING_NAMESPACE} namespace may come from "
                            f"outside, got {peer}")
                elif pod is not None:
                    if set(pod) != {"app.kubernetes.io/name"}:
                        err(f"{w}: peers must select pods by app.kubernetes.io/name, got {pod}")
                    allowed.add(pod.get("app.kubernetes.io/name"))
                else:
                    err(f"{w}: peer {peer} selects everything")
        want = {"gateway"} | INTERNAL_CALLERS[name]
        if allowed != want:
            err(f"{w}: port {port} must be reachable from exactly {sorted(want)}, "
                f"got {sorted(allowed, key=str)}")


def check_dashboard() -> None:
    path = DEPLOY / "grafana" / "zimmer-dashboard.json"
    if not path.is_file():
        err(f"{path.relative_to(DEPLOY.parent)}: missing")
        return
    try:
        dash = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        err(f"{path.name}: invalid JSON: {e}")
        return
    text = json.dumps(dash)
    for metric in ("zimmer_http_requests_total", "zimmer_http_request_duration_seconds_bucket",
                   "zimmer_db_pool_connections", "zimmer_outbox_pending_events",
                   "zimmer_events_published_total", "zimmer_events_consumed_total",
                   "zimmer_events_dead_lettered_total"):
        if metric not in text:
            err(f"{path.name}: no panel uses {metric}")
    names = {v.get("name") for v in (dash.get("templating") or {}).get("list") or []}
    if "service" not in names:
        err(f"{path.name}: template variable 'service' missing")
    if "${DS_PROMETHEUS}" not in text:
        err(f"{path.name}: datasource ${{DS_PROMETHEUS}} not used")


def check_render(n_objects: int) -> str:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return "kubectl not found: kustomize render skipped"
    try:
        run = subprocess.run([kubectl, "kustomize", "--load-restrictor",
                              "LoadRestrictionsNone", str(HERE)], capture_output=True,
                             text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"kubectl kustomize could not run ({e}): skipped"
    if run.returncode != 0:
        err(f"kubectl kustomize failed: {run.stderr.strip()}")
        return "kubectl kustomize failed"
    rendered = [d for d in yaml.safe_load_all(run.stdout) if d]
    for d in rendered:
        if d.get("kind") != "Namespace" and d["metadata"].get("namespace") != NAMESPACE:
            err(f"rendered {d['kind']} {d['metadata']['name']}: not in namespace {NAMESPACE}")
    generated = {d["metadata"]["name"] for d in rendered if d["kind"] == "ConfigMap"}
    for d in rendered:
        if d["kind"] in ("Deployment", "Job"):
            pod = d["spec"]["template"]["spec"]
            refs = [v["configMap"]["name"] for v in pod.get("volumes") or [] if "configMap" in v]
            refs += [s["configMapRef"]["name"] for c in pod["containers"]
                     for s in c.get("envFrom") or [] if "configMapRef" in s]
            for r in refs:
                if r not in generated:
                    err(f"rendered {d['kind']} {d['metadata']['name']}: ConfigMap {r} not generated")
    if len(rendered) != n_objects + len(generated):
        err(f"kubectl kustomize: {len(rendered)} objects, expected {n_objects + len(generated)}")
    return f"kubectl kustomize: {len(rendered)} objects"


def main() -> int:
    files = load_yaml_files()
    objects, config = check_kustomization(files)
    check_workloads(objects, config)
    check_job(objects)
    check_misc(objects, config, files)
    check_network_policies(objects)
    check_dashboard()
    rendered = check_render(len(objects))
    if errors:
        for e in errors:
            print(f"deploy/k8s: {e}", file=sys.stderr)
        print(f"deploy/k8s: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"deploy/k8s: {len(files)} YAML files parse, {len(objects)} objects checked; {rendered}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
