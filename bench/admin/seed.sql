-- Seeds a migrated, EMPTY database with a production-sized platform for the admin stats
-- benchmark: 100 000 users, 40 automations, 120 000 user automations, 300 000 payments,
-- 1 000 000 token-ledger rows, 20 000 tickets; timestamps spread over the last year (users
-- over two). Deterministic (setseed). Run by bench/admin/run.sh; never against a real database.

\set ON_ERROR_STOP on
SELECT setseed(0.42);

BEGIN;

-- 100 000 users: 99 940 customers, 60 staff; 2 % deactivated.
INSERT INTO users (name, email, password_hash, role, is_active, created_at, updated_at)
SELECT 'کاربر ' || g,
       'user' || g || '@bench.example',
       '$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtcmVhbC1zYWx0$bm90LWEtcmVhbC1oYXNoLW5vdC1hLXJlYWwtaGFzaA',
       CASE WHEN g % 5000 = 0 THEN 'manager'
            WHEN g % 2500 = 0 THEN 'technical_team'
            WHEN g % 1700 = 0 THEN 'support_staff'
            ELSE 'customer' END,
       g % 50 <> 0,
       ts, ts
FROM (SELECT g, now() - random() * interval '730 days' AS ts
      FROM generate_series(1, 100000) g) s;

INSERT INTO automations (name, description, price_per_token, demo_tokens, is_listed, health_status)
SELECT 'Automation ' || g, 'Benchmark automation ' || g, 500 + g * 50, 5, g % 8 <> 0,
       (ARRAY['healthy', 'healthy', 'degraded', 'down', 'unknown'])[1 + g % 5]
FROM generate_series(1, 40) g;

-- 120 000 user automations: every user one, every fifth user a second.
INSERT INTO user_automations (user_id, automation_id, tokens_remaining, demo_tokens, status,
                              integration_status, created_at)
SELECT u.id, 1 + (u.id % 40), (random() * 500)::bigint, (random() * 5)::bigint,
       (ARRAY['active', 'active', 'active', 'paused', 'canceled'])[1 + u.id % 5],
       'provisioned', u.created_at
FROM users u;
INSERT INTO user_automations (user_id, automation_id, tokens_remaining, status,
                              integration_status, created_at)
SELECT u.id, 1 + ((u.id + 7) % 40), (random() * 500)::bigint, 'active', 'provisioned',
       u.created_at + interval '1 day'
FROM users u WHERE u.id % 5 = 0;

-- 300 000 payments over the last year: 70 % succeeded, the rest failed, canceled, expired,
-- pending, needs_review. Amount = tokens × 1 000 Rials.
INSERT INTO payments (user_id, automation_id, user_automation_id, amount, tokens_purchased,
                      status, authority, ref_id, created_at, verified_at, updated_at)
SELECT ua.user_id, ua.automation_id, ua.id, t * 1000, t,
       st,
       'A' || lpad(g::text, 35, '0'),
       CASE WHEN st = 'succeeded' THEN 100000 + g END,
       ts,
       CASE WHEN st = 'succeeded' THEN ts + interval '90 seconds' END,
       ts
FROM (SELECT g,
             1 + (g::bigint * 7919) % 120000 AS ua_id,
             (10 + random() * 990)::bigint AS t,
             CASE WHEN r < 0.70 THEN 'succeeded' WHEN r < 0.80 THEN 'failed'
                  WHEN r < 0.88 THEN 'canceled' WHEN r < 0.93 THEN 'expired'
                  WHEN r < 0.98 THEN 'pending' ELSE 'needs_review' END AS st,
             now() - random() * interval '365 days' AS ts
      FROM (SELECT g, random() AS r FROM generate_series(1, 300000) g) x) p
JOIN user_automations ua ON ua.id = p.ua_id;

-- 1 000 000 ledger rows: a demo grant per user automation (120 000), a purchase per
-- succeeded payment (~210 000), ~669 000 consumptions, 1 000 staff adjustments.
INSERT INTO token_ledger (user_automation_id, kind, delta, demo_delta, balance_after,
                          demo_balance_after, source_key, created_at)
SELECT id, 'demo_grant', 0, 5, 0, 5, 'demo:' || id, created_at FROM user_automations;

INSERT INTO token_ledger (user_automation_id, kind, delta, demo_delta, balance_after,
                          demo_balance_after, source_key, created_at)
SELECT user_automation_id, 'purchase', tokens_purchased, 0, tokens_purchased, 0,
       'payment:' || id, verified_at
FROM payments WHERE status = 'succeeded';

INSERT INTO token_ledger (user_automation_id, kind, delta, demo_delta, balance_after,
                          demo_balance_after, source_key, usage_type, created_at)
SELECT 1 + (g::bigint * 104729) % 120000, 'consumption', -(1 + (g % 7)), CASE WHEN g % 10 = 0 THEN -1 ELSE 0 END,
       g % 300, 0, 'usage:bench:' || g, 'message', now() - random() * interval '365 days'
FROM generate_series(1, 1000000 - 1000 - (SELECT count(*) FROM token_ledger)) g;

INSERT INTO token_ledger (user_automation_id, kind, delta, demo_delta, balance_after,
                          demo_balance_after, source_key, actor_id, reason, created_at)
SELECT 1 + (g::bigint * 31) % 120000, 'adjustment', (g % 41) - 20, 0, 100, 0, 'adjust:bench-' || g,
       5000, 'benchmark adjustment', now() - random() * interval '365 days'
FROM generate_series(1, 1000) g;

-- 20 000 tickets.
INSERT INTO tickets (user_id, title, description, status, priority, importance, created_at, updated_at)
SELECT 1 + (g::bigint * 613) % 100000, 'تیکت ' || g, 'متن تیکت ' || g,
       (ARRAY['open', 'pending', 'in_progress', 'resolved', 'closed', 'closed'])[1 + g % 6],
       (ARRAY['low', 'medium', 'high', 'urgent'])[1 + g % 4], 'medium', ts, ts
FROM (SELECT g, now() - random() * interval '365 days' AS ts FROM generate_series(1, 20000) g) t;

COMMIT;

-- What autovacuum would have done on a live database: statistics and the visibility map
-- (index-only scans depend on it).
VACUUM ANALYZE;

SELECT (SELECT count(*) FROM users) AS users,
       (SELECT count(*) FROM payments) AS payments,
       (SELECT count(*) FROM token_ledger) AS ledger_rows,
       (SELECT count(*) FROM user_automations) AS user_automations,
       (SELECT count(*) FROM tickets) AS tickets;
