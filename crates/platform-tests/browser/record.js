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

// Throws, with the answer's reason, unless the call got one of the `expect`ed statuses.
function checkRecorded(call, method, path, expect, data) {
  if (call.error || !expect.includes(call.status)) {
    const detail = data && (data.detail || data.message);
    throw new Error(`${method} ${path}: ${call.status} ${call.error || detail || JSON.stringify(data)}`);
  }
}
