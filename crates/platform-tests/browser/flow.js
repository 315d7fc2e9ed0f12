// A new customer's first visit to the Persian user panel, as the panel makes its calls
// (docs/panels.md): sign up, log in, browse the marketplace, add an automation, buy tokens
// (through the payment gateway's StartPay page and back to /payment/return), open a ticket
// with a Persian subject, open the notifications (list and EventSource), log out.
//
// Every backend call is recorded ({step, method, path, status, expected, error}); a fetch
// that rejects (network error, CORS refusal) is recorded with status 0 and its error. The
// record goes to /report (same origin) after each step, and at the end with kind "done"
// (or "error" with the reason). State lives in localStorage, as the panel keeps its token
// there, so the flow survives the trip to the payment gateway.
(() => {
  'use strict';

  const KEY = 'zimmer-flow';
  const params = new URLSearchParams(location.search);
  const logEl = document.getElementById('log');
  const show = (line) => { logEl.textContent += line + '\n'; };

  let state = JSON.parse(localStorage.getItem(KEY) || 'null');
  if (location.pathname === '/' && params.get('api')) {
    state = {
      run: params.get('run'),
      api: params.get('api'),
      email: params.get('email'),
      password: params.get('password'),
      automationId: Number(params.get('automation')),
      discount: params.get('discount'),
      token: null,
      steps: [],
      calls: [],
      notes: {},
    };
  }
  const save = () => localStorage.setItem(KEY, JSON.stringify(state));

  async function report(kind, detail) {
    const body = {
      run: state ? state.run : null,
      kind,
      detail: detail || null,
      steps: state ? state.steps : [],
      calls: state ? state.calls : [],
      notes: state ? state.notes : {},
    };
    await fetch('/report', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  function need(condition, what) {
    if (!condition) throw new Error('unexpected answer: ' + what);
  }

  async function step(name) {
    state.steps.push(name);
    save();
    show('— ' + name);
    await report('progress');
  }

  // One backend call as the panel makes it: Bearer from storage when signed in, cookies
  // always; JSON body, FormData, or none.
  async function api(method, path, { bearer = true, json, form, expect = [200, 201, 204] } = {}) {
    const headers = {};
    if (bearer && state.token) headers.Authorization = 'Bearer ' + state.token;
    let body;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (form) {
      body = form; // the browser sets multipart/form-data with its boundary
    }
    const init = { method, headers, body, credentials: 'include' };
    const step = state.steps[state.steps.length - 1] || null;
    return recordedCall(state, show, method, path, init, { expect, extra: { step }, after: save });
  }

  async function firstVisit() {
    const { email, password } = state;

    await step('signup');
    let r = await api('POST', '/api/auth/signup', {
      bearer: false,
      json: { email, password, name: 'مهسا رضایی', confirm_password: password },
      expect: [201],
    });
    need(typeof r.access_token === 'string' && r.user && r.user.email === email, 'signup user');
    need(r.user.is_admin === false && r.user.email_verified_at === null, 'signup user flags');

    await step('login');
    r = await api('POST', '/api/auth/login', { bearer: false, json: { email, password }, expect: [200] });
    need(typeof r.access_token === 'string' && r.user.id > 0, 'login answer');
    state.token = r.access_token;
    r = await api('GET', '/api/me');
    need(r.email === email && 'email_verified_at' in r, '/api/me');

    await step('marketplace');
    r = await api('GET', '/api/optimized/automations/marketplace');
    need(Array.isArray(r.automations) && r.automations.length > 0, 'the catalogue');
    const listed = r.automations.find((a) => a.id === state.automationId);
    need(listed && typeof listed.price_per_token === 'number', 'the automation in the catalogue');
    r = await api('GET', `/api/automations/${state.automationId}?t=${Date.now()}`);
    need(r.user_has_automation === false && r.name === listed.name, 'automation page');
    state.notes.automationName = r.name;
    state.notes.price = r.price_per_token;

    await step('add-automation');
    await api('POST', `/api/user/automations/${state.automationId}`, { expect: [200, 201] });
    r = await api('GET', '/api/user/automations');
    need(Array.isArray(r) && r.some((ua) => ua.automation_id === state.automationId), 'my automations');
    r = await api('GET', `/api/automations/${state.automationId}?t=${Date.now()}`);
    need(r.user_has_automation === true, 'user_has_automation after adding');

    await step('purchase-page');
    r = await api('GET', `/api/user/automations/${state.automationId}`);
    need(r.user_automation && typeof r.user_automation.tokens_remaining === 'number', 'balance');
    r = await api('POST', '/api/discounts/validate', {
      json: { code: state.discount, automation_id: state.automationId, amount: state.notes.price * 10 },
    });
    need(r.valid === true && r.amount_after < r.amount_before, 'discount preview');
    r = await api('POST', '/api/payments/zarinpal/init', {
      json: {
        automation_id: state.automationId,
        tokens: 10,
        return_path: '/payment/return',
        discount_code: state.discount,
      },
    });
    need(typeof r.redirect_url === 'string' && r.redirect_url.includes('/StartPay/'), 'redirect_url');
    state.notes.paymentId = r.payment_id;
    state.notes.startPay = r.redirect_url;

    await step('payment-gateway');
    // Off to the bank; it sends the payer back to /payment/return, where the flow goes on.
    location.assign(r.redirect_url);
  }

  async function backFromTheBank() {
    await step('payment-result');
    const q = new URLSearchParams(location.search);
    need(Number(q.get('payment_id')) === state.notes.paymentId, 'payment_id in the return URL');
    const query = new URLSearchParams({
      payment_id: q.get('payment_id'),
      Authority: q.get('Authority'),
      Status: q.get('Status'),
    });
    let r = await api('GET', '/api/payments/zarinpal/callback?' + query);
    need(r.payment_id === state.notes.paymentId && typeof r.message === 'string', 'payment result');
    state.notes.paymentStatus = r.status;
    need(r.status === 'succeeded', 'payment succeeded, got ' + r.status);

    // After a full page load the panel renews its access token with the refresh cookie.
    await step('refresh-after-reload');
    r = await api('POST', '/api/auth/refresh', { bearer: false, expect: [200] });
    need(typeof r.access_token === 'string', 'refreshed access token');
    state.token = r.access_token;
    r = await api('GET', '/api/user/payments?limit=10&offset=0&order=desc');
    need(Array.isArray(r.items) && r.items.some((p) => p.id === state.notes.paymentId), 'payment history');

    await step('ticket');
    const subject = 'ربات تلگرام به پیام‌ها پاسخ نمی‌دهد';
    const form = new FormData();
    form.append('user_id', '1');
    form.append('subject', subject);
    form.append('message', 'سلام، از دیروز ربات به هیچ پیامی جواب نمی‌دهد. لطفاً بررسی کنید.');
    form.append('importance', 'high');
    r = await api('POST', '/api/tickets', { form, expect: [201] });
    need(r.subject === subject && r.importance === 'high', 'created ticket');
    state.notes.ticketId = r.id;
    r = await api('GET', '/api/tickets');
    need(Array.isArray(r.tickets) && r.tickets.some((t) => t.subject === subject), 'ticket list');

    await step('notifications');
    r = await api('GET', '/api/notifications?limit=20&offset=0');
    const items = Array.isArray(r) ? r : r.items;
    need(Array.isArray(items), 'notifications');
    items.forEach((n) => need(typeof n.id === 'number' && typeof n.title === 'string' && 'data' in n, 'a notification'));
    r = await api('GET', '/api/notifications/unread-count');
    need(typeof r.count === 'number', 'unread count');
    await openStream();
    state.notes.notificationsListed = items.length;
    await api('POST', '/api/notifications/mark-read', { json: { ids: items.slice(0, 1).map((n) => n.id) } });
    await api('POST', '/api/notifications/mark-all-read');
    r = await api('GET', '/api/notifications/unread-count');
    need(typeof r.count === 'number', 'unread count after marking');

    await step('logout');
    await api('POST', '/api/auth/logout', { bearer: false, expect: [200, 204] });
    state.token = null;
    // Deliberate: the session is over, so the cookie no longer renews it.
    await api('POST', '/api/auth/refresh', { bearer: false, expect: [401] });

    state.steps.push('done');
    save();
    await report('done');
    localStorage.removeItem(KEY);
    show('done');
  }

  // The panel's live notifications: an EventSource with ?token=, open for a moment.
  async function openStream() {
    const call = {
      step: 'notifications',
      method: 'GET',
      path: '/api/notifications/stream',
      status: 0,
      expected: [200],
      error: null,
    };
    state.calls.push(call);
    const url = `${state.api}/api/notifications/stream?token=${encodeURIComponent(state.token)}`;
    const es = new EventSource(url);
    // Open (or fail) within 15 s, then listen for a moment as the panel's page would.
    const outcome = await new Promise((resolve) => {
      const messages = [];
      let opened = false;
      es.onopen = () => {
        opened = true;
        setTimeout(() => resolve({ opened, messages }), 1500);
      };
      es.onmessage = (e) => messages.push(e.data);
      es.onerror = () => { if (!opened) resolve({ opened, messages }); };
      setTimeout(() => resolve({ opened, messages }), 15000);
    });
    es.close();
    call.status = outcome.opened ? 200 : 0;
    if (!outcome.opened) call.error = 'EventSource did not open (network or CORS)';
    // Every message is shown as a notification: each must be one.
    for (const m of outcome.messages) {
      let n = null;
      try { n = JSON.parse(m); } catch (e) { /* recorded below */ }
      if (!n || typeof n.id !== 'number' || typeof n.title !== 'string') {
        call.error = 'a stream message that is not a notification: ' + m;
      }
    }
    state.notes.streamMessages = outcome.messages.length;
    save();
    show(`EventSource → ${call.status} (${outcome.messages.length} message(s))`);
    if (call.error) throw new Error(call.error);
  }

  async function main() {
    if (!state) {
      show('nothing to do (open / with ?api=…)');
      return;
    }
    save();
    try {
      if (location.pathname === '/payment/return') {
        await backFromTheBank();
      } else {
        await firstVisit();
      }
    } catch (e) {
      show('error: ' + e.message);
      await report('error', String(e.message || e));
    }
  }

  window.addEventListener('error', (e) => { report('error', 'page error: ' + e.message); });
  window.addEventListener('unhandledrejection', (e) => { report('error', 'unhandled: ' + e.reason); });
  main();
})();
