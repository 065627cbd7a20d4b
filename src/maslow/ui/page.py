"""The review page: one HTML document with inline CSS and JS (no build step, nothing loaded from elsewhere).

The page of findings that holds the first undecided one and the summary are embedded as JSON
(``<script id="initial">``), so the page opens where the review stands; the script then talks to ``/api/``. Keys:
``a`` accept, ``r`` reject, ``s`` skip, ``j`` / ``k`` next / previous (not while typing in the note; Enter or Escape
leaves it). What the reviewer asks for is done one thing at a time, in order (``act``): a key pressed while a decision
is on its way waits for it, else it would act on the finding still shown (two decisions on one finding, the next one
passed over); a failed request drops what was queued behind it.
"""

from __future__ import annotations

import html
import json
from typing import Any

from maslow.quality.consensus_report import LEGEND_CSS, legend

_CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 8px 16px; background: #263238; color: #fff; display: flex; gap: 16px; align-items: center; }
header h1 { font-size: 18px; margin: 0; }
#progress { flex: 1; } #bar { height: 6px; background: #455a64; border-radius: 3px; overflow: hidden; }
#bar div { height: 100%; background: #66bb6a; }
#filters { padding: 8px 16px; display: flex; gap: 12px; align-items: center; border-bottom: 1px solid #ddd; }
main { display: flex; height: calc(100vh - 100px); }
#list { width: 44%; overflow: auto; border-right: 1px solid #ddd; }
#list table { border-collapse: collapse; width: 100%; font-size: 13px; }
#list td, #list th { padding: 4px 6px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
#list tr.cur { background: #e3f2fd; } #list tr { cursor: pointer; }
.st { font-size: 11px; padding: 1px 5px; border-radius: 3px; background: #eceff1; }
.st.accepted { background: #c8e6c9; } .st.rejected { background: #ffcdd2; } .st.skipped { background: #fff9c4; }
#detail { flex: 1; padding: 16px; overflow: auto; }
#detail img { border: 1px solid #ccc; image-rendering: pixelated; max-width: 100%; }
.muted { color: #777; } __LEGEND_CSS__
button { font-size: 14px; padding: 6px 14px; margin-right: 6px; cursor: pointer; }
button.a { background: #c8e6c9; } button.r { background: #ffcdd2; } button.k { background: #fff9c4; }
#imgnote { padding: 6px 16px; background: #fff3e0; color: #e65100; border-bottom: 1px solid #ffe0b2; }
#msg { color: #b71c1c; margin-top: 8px; min-height: 1em; } kbd { border: 1px solid #aaa; padding: 0 3px; }
"""

_BODY = """
<header><h1>__TITLE__</h1><div id="progress"><span id="count"></span><div id="bar"><div></div></div></div>
<a href="/api/decisions?download=true" style="color:#fff">export decisions</a></header>
<div id="filters">
 <label>type <select id="f-type"><option value="">all</option></select></label>
 <label>class <select id="f-class"><option value="">all</option></select></label>
 <label>status <select id="f-status"><option value="">all</option><option>pending</option><option>accepted</option>
 <option>rejected</option><option>skipped</option></select></label>
 <button id="prev-page">&lt; page</button><span id="pageinfo"></span><button id="next-page">page &gt;</button>
 <span class="muted"><kbd>a</kbd> accept <kbd>r</kbd> reject <kbd>s</kbd> skip <kbd>j</kbd>/<kbd>k</kbd> move
 <kbd>Enter</kbd> leave the note</span>
</div>
<div id="imgnote" hidden></div>
<main><div id="list"><table><thead><tr><th>#</th><th>type</th><th>score</th><th>class</th><th>image</th>
<th>status</th></tr></thead><tbody id="rows"></tbody></table></div><div id="detail"></div></main>
"""

_JS = r"""
const init = JSON.parse(document.getElementById('initial').textContent);
const PICK_TYPES = ['ambiguous', 'class_conflict'];  // a class only when the reviewer picks one
let summary = init.summary, page = init.page, offset = init.page.offset, limit = init.page.limit;
let cur = Math.max(page.items.findIndex((f) => !f.decision), 0);  // where the review stands
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;',
  '"': '&quot;', "'": '&#39;'}[c]));
function fillFilters() {
  for (const t of summary.types) $('f-type').insertAdjacentHTML('beforeend', `<option>${esc(t)}</option>`);
  for (const c of summary.finding_classes) $('f-class').insertAdjacentHTML('beforeend', `<option>${esc(c)}</option>`);
}
function showSummary() {
  const c = summary.counts, n = summary.n_findings;
  $('count').textContent = `${summary.n_decided} of ${n} decided: ${c.accepted} accepted, ${c.rejected} rejected, ` +
    `${c.skipped} skipped`;
  $('bar').firstElementChild.style.width = (n ? 100 * summary.n_decided / n : 0) + '%';
}
function statusOf(f) { return f.decision ? f.decision.status : 'pending'; }
const score = (f) => (f.score == null ? '' : Number(f.score).toFixed(3));
// the offset of the next page: past the rows of this one that still pass the filters (a decided row leaves a
// status filter, and the rows after it move up: offset + limit would skip them)
function nextOffset() {
  const want = $('f-status').value;
  return offset + page.items.filter((f) => !want || want.split(',').includes(statusOf(f))).length;
}
function showList() {
  $('rows').innerHTML = page.items.map((f, i) => `<tr data-i="${i}" class="${i === cur ? 'cur' : ''}">` +
    `<td>${esc(f.rank)}</td><td>${esc(f.type)}</td><td>${score(f)}</td><td>${esc(f['class'])}</td>` +
    `<td>${esc(f.file_name)}</td><td><span class="st ${esc(statusOf(f))}">${esc(statusOf(f))}</span></td></tr>`)
    .join('');
  const last = Math.min(offset + limit, page.total);
  $('pageinfo').textContent = page.total ? ` ${offset + 1}-${last} of ${page.total} ` : ' none ';
  for (const tr of $('rows').children) tr.onclick = () => act(() => { cur = Number(tr.dataset.i); show(); });
  const row = $('rows').children[cur];
  if (row && row.scrollIntoView) row.scrollIntoView({block: 'nearest'});  // j / k past the bottom of the list
}
function show() {
  showList();
  const f = page.items[cur];
  if (!f) { $('detail').innerHTML = '<p class="muted">No finding here.</p>'; return; }
  const s = f.suggestion || {};
  // ambiguous, class_conflict: nothing changes unless the reviewer picks a class, so nothing is picked for them
  const pick = PICK_TYPES.includes(f.type);
  const chosen = (f.decision && f.decision.label) || (pick ? '' : s['class'] || f['class']);
  const none = pick ? `<option value="" ${chosen ? '' : 'selected'}>choose (none: nothing changes)</option>` : '';
  const picker = f.labels ? `<p><label>class <select id="label">${none}${summary.classes.map((c) =>
    `<option ${c === chosen ? 'selected' : ''}>${esc(c)}</option>`).join('')}</select></label></p>` : '';
  const button = (cls, status, text) => `<button class="${cls}" onclick="act(() => decide('${status}'))">${text}</button>`;
  const st = esc(statusOf(f));
  $('detail').innerHTML = `<h2>#${esc(f.rank)} ${esc(f.type)} <span class="st ${st}">${st}</span></h2>` +
    (f.crop ? `<p><img src="${esc(f.crop)}" alt="no crop (image not found)" onerror="noCrop(this)">` +
     '</p>' : '<p class="muted">(no image: a finding about the dataset)</p>') +
    `<p><b>${esc(f.file_name)}</b> &middot; class <b>${esc(f['class'])}</b> &middot; score ${score(f)}</p>` +
    `<p>${esc(f.reason)}</p><p class="s">suggestion: ${esc(s.text || 'none')}</p>` +
    `<p class="muted">__LEGEND__${f.other_row != null ? '; __LEGEND_OTHER__' : ''}</p>` +
    picker + `<p><input id="note" placeholder="note" size="40" value="${esc(f.decision ? f.decision.note : '')}">` +
    `</p><p>${button('a', 'accepted', 'Accept (a)')}${button('r', 'rejected', 'Reject (r)')}` +
    `${button('k', 'skipped', 'Skip (s)')}</p><div id="msg"></div>`;
  // a class picked: the keys work again at once (a focused select would take them as a search in its options)
  if ($('label')) $('label').onchange = (e) => e.target.blur();
  $('note').onkeydown = (e) => { if (e.key === 'Enter' || e.key === 'Escape') e.target.blur(); };
}
// a crop that failed: why (the server's message names the file: not found, corrupt, too large), as text
function noCrop(img) {
  const src = img.getAttribute('src');
  img.replaceWith('(no crop)');
  fetch(src).then((r) => r.json()).then((b) => {
    const p = document.querySelector('#detail p');
    if (b.error && p && p.textContent === '(no crop)') p.textContent = `(no crop: ${b.error})`;
  }).catch(() => {});
}
// one thing at a time, in the order asked (see the module docstring); an error drops what was queued behind it
let queue = Promise.resolve(), epoch = 0;
function act(fn) {
  const mine = epoch;
  queue = queue.then(() => (mine === epoch ? fn() : undefined)).catch((e) => {
    epoch += 1;
    if ($('msg')) $('msg').textContent = e.message;
  });
  return queue;
}
async function call(url, opts) {
  const r = await fetch(url, opts);
  const body = await r.json().catch(() => ({}));  // a proxy's HTML error page: its status is the message
  if (!r.ok) throw new Error(body.error || `${url}: ${r.status} ${r.statusText}`);
  return body;
}
async function load() {
  const q = new URLSearchParams({offset, limit});
  for (const k of ['type', 'class', 'status']) { const v = $('f-' + k).value; if (v) q.set(k, v); }
  page = await call('/api/findings?' + q);
  cur = Math.min(cur, Math.max(page.items.length - 1, 0));
  show();
}
async function decide(status) {
  const f = page.items[cur];
  if (!f) return;
  // the class goes with an accept, and only when picked: another than the suggested one (wrong_class, missing), or
  // any for the types without a suggested class (ambiguous, class_conflict: the empty choice sends none)
  const label = status === 'accepted' && f.labels && $('label') ? $('label').value || null : null;
  const picked = PICK_TYPES.includes(f.type) ? label : (label !== (f.suggestion || {})['class'] ? label : null);
  const body = {status, label: picked, note: $('note').value};
  const r = await call(`/api/findings/${encodeURIComponent(f.key)}/decision`, {method: 'POST', body: JSON.stringify(body),
    headers: {'Content-Type': 'application/json'}});
  f.decision = r.decision; summary = r.summary; showSummary();
  return move(1);
}
async function move(step) {
  if (cur + step >= page.items.length && offset + limit < page.total) { offset = nextOffset(); cur = 0; return load(); }
  if (cur + step < 0 && offset > 0) { offset = Math.max(offset - limit, 0); cur = limit - 1; return load(); }
  cur = Math.min(Math.max(cur + step, 0), Math.max(page.items.length - 1, 0)); show();
}
document.addEventListener('keydown', (e) => {
  if (['INPUT', 'SELECT', 'TEXTAREA'].includes(e.target.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = {a: () => decide('accepted'), r: () => decide('rejected'), s: () => decide('skipped'),
             j: () => move(1), k: () => move(-1)}[e.key];
  if (!k) return;
  e.preventDefault();
  if (!e.repeat || 'jk'.includes(e.key)) act(k);  // a held a / r / s decides once, not every finding it passes
});
// a filter chosen: the list reloads, and the select lets go of the keyboard (a focused select takes the keys)
for (const k of ['type', 'class', 'status']) {
  $('f-' + k).onchange = (e) => { e.target.blur(); act(() => { offset = 0; cur = 0; return load(); }); };
}
$('next-page').onclick = () => act(() => {
  if (offset + limit < page.total) { offset = nextOffset(); cur = 0; return load(); }
});
$('prev-page').onclick = () => act(() => {
  if (offset > 0) { offset = Math.max(offset - limit, 0); cur = 0; return load(); }
});
fillFilters(); showSummary(); show();
if (summary.image_note) { $('imgnote').textContent = summary.image_note; $('imgnote').hidden = false; }
"""


def render_page(title: str, summary: dict[str, Any], first_page: dict[str, Any]) -> str:
    """The page: ``summary`` (``Review.summary()``) and ``first_page`` (``Review.page()``) embedded as JSON."""
    data = json.dumps({"summary": summary, "page": first_page}, ensure_ascii=False)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e")  # no "</script>" can end the block early
    t = html.escape(title)
    css = _CSS.replace("__LEGEND_CSS__", LEGEND_CSS)
    js = _JS.replace("__LEGEND__", legend(("t", "the annotation"), ("s", "the suggestion"))).replace(
        "__LEGEND_OTHER__", legend(("o", "the other annotation of the pair")))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{t}</title>"
            f"<link rel='icon' href='data:,'><style>{css}</style></head><body>{_BODY.replace('__TITLE__', t)}"
            f"<script id='initial' type='application/json'>{data}</script><script>{js}</script></body></html>\n")
