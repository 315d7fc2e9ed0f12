// The admin dashboard's main pages, as docs/panels.md ("The admin dashboard") says the
// dashboard calls the gateway: AX (Bearer, cookies, JSON content type), F (plain fetch with a
// hand-made Bearer and `Content-Type: application/json` even on GET and bodiless calls, no
// cookies), X (Bearer only). No CSRF header, no idempotency key. Each page's answer is checked
// for the fields and JSON types that page reads.
//
// Every call is recorded ({page, method, path, status, expected, error}); a fetch that rejects
// (network error, CORS refusal) is recorded with status 0. The record goes to /report (same
// origin) with kind "done" at the end, or "error" with the reason.
(() => {
  'use strict';

  const params = new URLSearchParams(location.search);
  const logEl = document.getElementById('log');
  const show = (line) => { logEl.textContent += line + '\n'; };
  const state = {
    run: params.get('run'),
    api: params.get('api'),
    email: params.get('email'),
    password: params.get('password'),
    automationId: Number(params.get('automation')),
    userAutomationId: Number(params.get('ua')),
    customerId: Number(params.get('customer')),
    ticketId: Number(params.get('ticket')),
    token: null,
    pages: [],
    calls: [],
    notes: {},
  };

  async function report(kind, detail) {
    await fetch('/report', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...state, token: null, password: null, kind, detail: detail || null }),
    });
  }

  function need(condition, what) {
    if (!condition) throw new Error('unexpected answer: ' + what);
  }
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const isStr = (v) => typeof v === 'string';
  const isBool = (v) => typeof v === 'boolean';
  // Every row of `rows` has `fields`, each passing its check.
  function rowsHave(rows, fields, what) {
    need(Array.isArray(rows), what + ' is an array');
    for (const row of rows) {
      for (const [name, check] of Object.entries(fields)) {
        need(check(row[name]), `${what}.${name} = ${JSON.stringify(row[name])}`);
      }
    }
  }

  function page(name) {
    state.pages.push(name);
    show('— ' + name);
  }

  // One call. `how`: 'AX', 'F' or 'X' (see above).
  async function api(how, method, path, { json, expect = [200, 201, 204] } = {}) {
    const headers = {};
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    if (how !== 'X') headers['Content-Type'] = 'application/json';
    else if (json !== undefined) headers['Content-Type'] = 'application/json';
    const init = { method, headers };
    if (json !== undefined) init.body = JSON.stringify(json);
    if (how === 'AX') init.credentials = 'include';
    else init.credentials = 'omit';
    const page = state.pages[state.pages.length - 1] || null;
    return recordedCall(state, show, method, path, init, { expect, extra: { page, how }, label: how + ' ' });
  }

  async function dashboard() {
    const { automationId: auto, userAutomationId: ua, customerId: customer } = state;

    page('login');
    let r = await api('AX', 'POST', '/api/auth/login', {
      json: { email: state.email, password: state.password },
    });
    need(isStr(r.access_token) && r.user && r.user.is_admin === true && isStr(r.user.name), 'login');
    state.token = r.access_token;

    page('dashboard');
    r = await api('F', 'GET', '/api/admin/dashboard');
    need(r.status === 'success' && isNum(r.data.total_users) && isNum(r.data.total_tickets), 'cards');
    state.notes.totalUsers = r.data.total_users;
    r = await api('F', 'GET', '/api/admin/usage/stats');
    need(isNum(r.total_tokens_used), 'usage card');
    r = await api('F', 'GET', '/api/admin/payments');
    rowsHave(r.payments, { id: isNum, amount: isNum, created_at: isStr, status: isStr }, 'payments');
    need(r.payments.length === 1 && r.payments[0].status === 'completed', 'the completed payment');

    page('users');
    r = await api('AX', 'GET', '/api/admin/users/managers');
    rowsHave(r.users, { id: isNum, name: isStr, email: isStr, role: isStr, is_admin: isBool, is_active: isBool }, 'users');
    need(r.users.some((u) => u.id === customer && u.is_admin === false), 'the customer listed');

    page('user-automations');
    r = await api('AX', 'GET', '/api/admin/user-automations');
    rowsHave(r.user_automations, { id: isNum, user_name: isStr, automation_name: isStr, tokens_remaining: isNum }, 'user automations');
    await api('AX', 'POST', '/api/admin/tokens/adjust', {
      json: { user_automation_id: ua, delta_tokens: 10, reason: 'هدیه' },
      expect: [200, 201],
    });
    r = await api('AX', 'GET', '/api/admin/tokens/adjustments');
    rowsHave(r.adjustments, { amount: isNum, created_by_name: isStr, created_at: isStr }, 'adjustments');
    need(r.adjustments.length === 1, 'the adjustment listed');

    page('token-adjustments');
    r = await api('F', 'GET', '/api/admin/user-automations');
    need(Array.isArray(r.user_automations), 'history page pickers');
    r = await api('AX', 'GET', '/api/admin/tokens/adjustments?page=1&page_size=20');
    rowsHave(r.items, { delta_tokens: isNum, admin_name: isStr, user_automation_id: isNum }, 'items');
    need(isNum(r.total) && r.total === 1, 'total');

    page('knowledge');
    r = await api('AX', 'GET', '/api/admin/users/managers');
    need(Array.isArray(r.users), 'the form\'s customers');
    await api('AX', 'POST', '/api/admin/knowledge', {
      json: { client_id: customer, category: 'ارسال', answer: 'سه روز کاری' },
      expect: [201],
    });
    r = await api('AX', 'GET', '/api/admin/knowledge');
    rowsHave(r.knowledge_entries, { id: isNum, client_id: isNum, client_name: isStr, category: isStr, answer: isStr }, 'knowledge');
    need(r.knowledge_entries.length === 1, 'the entry listed');
    r = await api('AX', 'GET', `/api/admin/knowledge?client_id=${customer}&category=${encodeURIComponent('ارس')}`);
    need(r.knowledge_entries.length === 1, 'the category filter');

    page('kb-templates');
    r = await api('AX', 'GET', '/api/admin/automations');
    rowsHave(r.automations, { id: isNum, name: isStr, status: isBool, price_per_token: isNum, has_service_token: isBool }, 'automations');
    await api('AX', 'POST', '/api/admin/kb-templates', {
      json: { automation_id: auto, category: '', question: 'چطور؟', answer: 'این‌طور.' },
      expect: [201],
    });
    r = await api('AX', 'GET', '/api/admin/kb-templates');
    rowsHave(r.templates, { id: isNum, automation_id: isNum, automation_name: isStr, question: isStr }, 'templates');
    need(r.templates.length === 1, 'the template listed');

    page('kb-monitoring');
    r = await api('F', 'GET', '/api/admin/automations');
    need(Array.isArray(r.automations), 'automation picker');
    r = await api('F', 'GET', `/api/admin/kb-history?automation_id=${auto}&page=1&limit=20`);
    need(Array.isArray(r), 'kb-history is a bare array');
    r = await api('F', 'GET', `/api/admin/kb-history/stats?automation_id=${auto}`);
    need(isNum(r.total_records) && isNum(r.healthy_count) && isNum(r.problematic_count), 'kb stats');
    r = await api('F', 'GET', `/api/admin/kb-history/chart-data?automation_id=${auto}&days=7`);
    need(Array.isArray(r.chart_data) && r.chart_data.length === 7 && isStr(r.date_range.start_date), 'kb chart');

    page('backups');
    r = await api('F', 'GET', '/api/admin/backups?');
    need(Array.isArray(r), 'backups is a bare array');
    r = await api('F', 'GET', '/api/admin/backups/stats');
    need(isNum(r.total_backups) && isNum(r.total_size_bytes), 'backup stats');

    page('tickets');
    r = await api('AX', 'GET', '/api/admin/tickets');
    rowsHave(r.tickets, { id: isNum, user_name: isStr, subject: isStr, description: isStr, priority: isStr, status: isStr }, 'tickets');
    need(r.tickets.some((t) => t.id === state.ticketId), 'the ticket listed');
    await api('AX', 'PUT', `/api/tickets/${state.ticketId}`, { json: { status: 'in_progress' } });
    await api('AX', 'PUT', `/api/tickets/${state.ticketId}`, { json: { message: 'در حال بررسی هستیم' } });

    page('automations');
    r = await api('AX', 'GET', '/api/admin/automations');
    const bot = r.automations.find((a) => a.id === auto);
    need(bot && bot.status === true, 'the automation, active');
    await api('AX', 'PUT', `/api/admin/automations/${auto}`, { json: { status: false } });
    await api('AX', 'PUT', `/api/admin/automations/${auto}`, { json: { status: true } });

    page('api-keys');
    r = await api('F', 'GET', '/api/admin/list');
    need(Array.isArray(r), '/list is a bare array');
    r = await api('F', 'POST', '/api/admin/', {
      json: { automation_id: auto, alias: 'اصلی', api_key: 'sk-browser-test-9876', status: 'active', rpm_limit: 60 },
      expect: [201],
    });
    need(isNum(r.id), 'key id');
    r = await api('F', 'GET', `/api/admin/list?automation_id=${auto}&status=active`);
    rowsHave(r, { id: isNum, alias: isStr, masked_key: isStr, rpm_limit: isNum, used_tokens_today: isNum }, 'keys');
    need(r.length === 1 && r[0].masked_key === 'sk-****9876', 'the key, masked');

    page('usage');
    r = await api('F', 'GET', '/api/admin/usage/stats');
    need(isNum(r.total_tokens_used) && isNum(r.tokens_used_today), 'usage page');

    page('payments');
    r = await api('AX', 'GET', '/api/admin/payments');
    rowsHave(r.payments, { user_name: isStr, automation_name: isStr, amount: isNum, status: isStr, payment_status: isStr }, 'payments');
    r = await api('AX', 'GET', '/api/admin/automations');
    need(Array.isArray(r.automations), 'payments filter');

    page('discounts');
    await api('AX', 'POST', '/api/admin/discounts', {
      json: {
        code: 'BAHAR', percent_off: 15, active: true, starts_at: null, ends_at: null,
        max_redemptions: null, per_user_limit: null, automation_ids: [auto],
      },
      expect: [201],
    });
    r = await api('AX', 'GET', '/api/admin/discounts');
    rowsHave(r.discounts, { id: isNum, code: isStr, percent_off: isNum, discount_value: isNum, is_active: isBool, active: isBool }, 'discounts');
    const code = r.discounts[0];
    await api('AX', 'PUT', `/api/admin/discounts/${code.id}`, {
      json: {
        code: code.code, description: 'بهار', discount_type: 'percentage', discount_value: 20,
        is_active: true, valid_from: '2026-01-01T10:00', valid_until: '2030-01-01T10:00',
      },
    });
    r = await api('AX', 'GET', `/api/admin/discounts/${code.id}/redemptions`);
    need(Array.isArray(r), 'redemptions are a bare array');

    page('fallbacks');
    r = await api('F', 'GET', '/api/admin/users');
    rowsHave(r.users, { id: isNum, name: isStr, email: isStr, role: isStr }, 'customer filter');
    r = await api('F', 'GET', '/api/admin/fallbacks');
    rowsHave(r.fallbacks, { id: isNum, client_id: isNum, client_name: isStr, message: isStr, status: isStr }, 'fallbacks');
    r = await api('F', 'GET', `/api/admin/fallbacks?client_id=${customer}`);
    need(Array.isArray(r.fallbacks), 'filtered fallbacks');

    page('notifications');
    r = await api('X', 'GET', '/api/admin/users/managers');
    const targets = r.users.filter((u) => !u.is_admin).map((u) => u.id);
    r = await api('X', 'POST', '/api/admin/notifications', {
      json: { user_ids: targets, type: 'system', title: 'اطلاعیه', body: 'متن' },
    });
    need(isNum(r.created) && r.created === targets.length, 'direct notifications');
    r = await api('X', 'POST', '/api/admin/notifications/broadcast', {
      json: { type: 'system', title: 'همه', body: 'متن', role: 'customer' },
      expect: [200, 202],
    });
    need(isNum(r.created), 'broadcast');

    page('logout');
    await api('AX', 'POST', '/api/auth/logout');
    state.token = null;
  }

  dashboard()
    .then(() => report('done'))
    .catch((e) => {
      show('ERROR ' + e.message);
      return report('error', e.message);
    });
})();
