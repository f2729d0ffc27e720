// A shareable link's browser half (explorer/share.py loads it, filling each /*name*/null): keeps the
// query in step with the page; fields at their defaults are left out.
() => {
  const defaults = /*defaults*/null;  // what the page shows with no query
  const params = new URLSearchParams(location.search);
  // plotly draws colour bars and clip paths as url(<page address>#id) where the page has a <base>, as
  // Gradio's does: a new address would leave those pointing nowhere (blank colour bars), so they follow it
  const repoint = (before, after) => document.querySelectorAll('.js-plotly-plot').forEach(gd => {
    if (gd._context && gd._context._baseUrl) gd._context._baseUrl = after;
    gd.querySelectorAll('[style*="url("], [clip-path], [fill^="url("]').forEach(el => {
      for (const name of ['style', 'clip-path', 'fill']) {
        const v = el.getAttribute(name);
        if (v && v.includes(before + '#')) el.setAttribute(name, v.split(before + '#').join(after + '#'));
      } }); });
  const write = () => { const before = location.href.split('#')[0];
    const q = params.toString(); history.replaceState(null, '', q ? '?' + q : location.pathname);
    const after = location.href.split('#')[0];
    if (after !== before) repoint(before, after); };
  const same = (key, v) => key in defaults && String(defaults[key] ?? '') === String(v ?? '');
  window.vmShare = {
    set(key, v) { if (same(key, v)) params.delete(key); else params.set(key, String(v ?? '').slice(0, /*max_text*/null)); write(); },
    pressed(id) { const runs = (params.get('run') || '').split(',').filter(Boolean);
                  if (!runs.includes(id)) runs.push(id); params.set('run', runs.join(',')); write(); },
    modelsChosen() { params.delete('run'); write(); },
    link() { try { navigator.clipboard.writeText(location.href).catch(() => {}); } catch (e) {} return location.href; },
    press(ids) {  // after the restored values have reached the boxes; a button on a tab not yet
                  // shown (Gradio builds a tab when it is first opened) is pressed when it appears
      let pending = (ids || '').split(',').filter(Boolean);
      const pressShown = () => { pending = pending.filter(id => {
        const button = document.getElementById(id);
        if (button) button.click();
        return !button; }); };
      setTimeout(() => {
        pressShown();
        if (!pending.length) return;
        const watch = new MutationObserver(() => setTimeout(() => {
            pressShown(); if (!pending.length) watch.disconnect(); }, 300));
        watch.observe(document.body, {childList: true, subtree: true});
      }, 300); },
  };
}
