// What flow.js and admin.js share: one recorded backend call. `call` is the record
// ({status, error, ...}) the page keeps; a fetch that rejects (network error, CORS refusal)
// leaves status 0 and says why in `call.error`.

// Makes the call and fills in its status; the answer parsed as JSON (null when empty).
async function recordedFetch(call, url, init) {
  let data = null;
  try {
    const res = await fetch(url, init);
    call.status = res.status;
    const text = await res.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        call.error = 'not JSON: ' + text.slice(0, 200);
      }
    }
  } catch (e) {
    call.error = 'fetch failed (network or CORS): ' + e;
  }
  return data;
}

// One whole recorded call to the gateway (`state.api`): its record pushed on `state.calls`
// (status 0 until it answers), the fetch, `after` (the page's own bookkeeping), a line for
// `show`, then checkRecorded. `extra` holds the page's own fields of the record (the step or
// page, how it calls); `label` starts the shown line.
async function recordedCall(state, show, method, path, init, { expect, extra = {}, label = '', after }) {
  const call = { ...extra, method, path: path.split('?')[0], status: 0, expected: expect, error: null };
  state.calls.push(call);
  const data = await recordedFetch(call, state.api + path, init);
  if (after) after();
  show(`${label}${method} ${path} → ${call.status}${call.error ? ' ' + call.error : ''}`);
  checkRecorded(call, method, path, expect, data);
  return data;
}

// Throws, with the answer's reason, unless the call got one of the `expect`ed statuses.
function checkRecorded(call, method, path, expect, data) {
  if (call.error || !expect.includes(call.status)) {
    const detail = data && (data.detail || data.message);
    throw new Error(`${method} ${path}: ${call.status} ${call.error || detail || JSON.stringify(data)}`);
  }
}
