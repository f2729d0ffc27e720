// The page's own script, beside Gradio's (explorer/browser.py loads it, filling each /*name*/null):
// it links the compare view's two maps, turns a click on a latent map into a place to decode, and reads a
// visitor's .txt upload in the browser.
() => {
  if (window.vmMaps) return;
  const caps = /*caps*/null;  // your sentences' caps (core.OWN_MAX_BYTES, core.OWN_MAX_LINES)
  const cmp = /*compare*/null;  // the compare view's map, selection box and list button (browser.COMPARE)
  const lat = /*latent*/null;  // the latent map's two maps, place box and button (browser.LATENT)
  const box = (id) => document.querySelector('#' + id + ' textarea, #' + id + ' input');
  const setBox = (id, text) => { const t = box(id); if (!t) return;
    t.value = text; t.dispatchEvent(new Event('input', {bubbles: true})); };
  const parse = (text) => (text || '').split(/[\s,]+/).filter(p => /^\d+$/.test(p)).map(Number);

  // the compare view: trace 0 is the left map, trace 1 the right, point i is sentence i in both
  const show = (gd, ids) => { const sel = ids && ids.length ? ids : null;
    Plotly.restyle(gd, {selectedpoints: [sel, sel]}, [0, 1]); };
  const link = (gd) => {
    if (!gd._ev || gd._ev.vmLinked) return;
    gd._ev.vmLinked = true;
    let echo = false;
    gd.on('plotly_selected', (ev) => {
      if (!ev || !ev.points) return;
      const ids = [...new Set(ev.points.filter(p => p.curveNumber < 2).map(p => p.pointNumber))].sort((a, b) => a - b);
      show(gd, ids); setBox(cmp.selected, ids.join(' '));
      const button = document.getElementById(cmp.list); if (button && ids.length) button.click();
    });
    gd.on('plotly_deselect', () => { show(gd, null); setBox(cmp.selected, ''); });
    gd.on('plotly_hover', (ev) => {
      if (echo || !ev.points || !ev.points.length || ev.points[0].curveNumber > 1) return;
      const i = ev.points[0].pointNumber;
      echo = true;
      try { Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: i}, {curveNumber: 1, pointNumber: i}], ['xy', 'x2y2']); }
      finally { echo = false; }
    });
    const restored = parse(box(cmp.selected) && box(cmp.selected).value);  // a shared link's selection
    if (restored.length) show(gd, restored);
  };
  setInterval(() => { const gd = document.querySelector('#' + cmp.map + ' .js-plotly-plot');
    if (gd && gd.data && window.Plotly) link(gd); }, 400);

  // the latent map: a click on a point (trace 0, the corpus) or anywhere else in the plot becomes the
  // place to decode ("left #123" or "left 3.2 -1.5"), marked on the map with a cross
  const mark = (gd, x, y) => {
    const old = gd.data.findIndex(t => t.name === 'clicked place');
    if (old >= 0) Plotly.deleteTraces(gd, old);
    Plotly.addTraces(gd, {x: [x], y: [y], type: 'scattergl', mode: 'markers', name: 'clicked place',
      hoverinfo: 'skip', showlegend: false,
      marker: {symbol: 'x', size: 14, color: '#e8432e', line: {color: '#fff', width: 1}}});
  };
  const clickable = (gd, side) => {
    if (!gd._ev || gd._ev.vmClick) return;
    gd._ev.vmClick = true;
    let hit = null, down = null;
    gd.on('plotly_click', (ev) => {
      const p = ev && ev.points && ev.points.find(q => q.curveNumber === 0);
      hit = p ? {i: p.pointNumber, x: p.x, y: p.y, at: Date.now()} : null;
    });
    gd.addEventListener('mousedown', (ev) => { down = [ev.clientX, ev.clientY]; }, true);
    gd.addEventListener('click', (ev) => {
      if (!down || Math.abs(ev.clientX - down[0]) + Math.abs(ev.clientY - down[1]) > 4) return;  // a drag
      const area = gd.querySelector('.nsewdrag');
      if (!area) return;
      const r = area.getBoundingClientRect();
      if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) return;
      setTimeout(() => {  // plotly_click, when the click was on a point, comes first
        const fl = gd._fullLayout;
        let place, x, y;
        if (hit && Date.now() - hit.at < 500) { place = side + ' #' + hit.i; x = hit.x; y = hit.y; }
        else {
          x = fl.xaxis.p2c(ev.clientX - r.left); y = fl.yaxis.p2c(ev.clientY - r.top);
          place = side + ' ' + x.toPrecision(5) + ' ' + y.toPrecision(5);
        }
        hit = null;
        mark(gd, x, y);
        setBox(lat.place, place);
        const button = document.getElementById(lat.go); if (button) button.click();
      }, 30);
    });
  };
  setInterval(() => { lat.maps.forEach((id, k) => {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    if (gd && gd.data && window.Plotly) clickable(gd, k ? 'right' : 'left'); }); }, 400);

  // uploads: read here, checked, and put into their text box; a message says what was read or what is wrong
  document.addEventListener('change', async (ev) => {
    const input = ev.target;
    if (!input.classList || !input.classList.contains('vm-upload-input')) return;
    const say = (text, bad) => { const m = document.getElementById(input.id + '-msg');
      if (m) { m.textContent = text; m.className = 'vm-upload-msg' + (bad ? ' vm-err-text' : ''); } };
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    if (file.size === 0) return say(file.name + ' is empty: nothing read', true);
    if (file.size > caps.bytes) return say(file.name + ' is ' + (file.size / 1048576).toFixed(1) + ' MB; at most '
      + caps.bytes / 1048576 + ' MB', true);
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (bytes.includes(0)) return say(
        file.name + ' is a binary file (it holds NUL bytes), not text with one sentence a line', true);
    let text;
    try { text = new TextDecoder('utf-8', {fatal: true}).decode(bytes); }
    catch (e) { return say(file.name + ' is not UTF-8 text: save it as UTF-8 and upload it again', true); }
    const lines = text.split(/\r\n|\r|\n/).filter(l => l.trim());
    if (!lines.length) return say(file.name + ' holds only blank lines: nothing read', true);
    if (lines.length > caps.lines) return say(
        file.name + ' holds ' + lines.length.toLocaleString('en') + ' lines; at most '
      + caps.lines.toLocaleString('en'), true);
    setBox(input.dataset.target, lines.join('\n'));
    say('read ' + lines.length.toLocaleString('en') + ' lines from ' + file.name + ' (kept in this page only)', false);
  });
  window.vmMaps = {link};
}
