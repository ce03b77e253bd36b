() => {
  // What a user sees of the loaded graph: every node's rect on screen, what covers it, its seed controls; the
  // groups; how far the notes' text overflows their box. Used by tests/frontend_browser.py.
  const canvas = app.canvas.canvas;
  const box = canvas.getBoundingClientRect();
  const ds = app.canvas.ds;
  const toScreen = (b) => [box.left + (b[0] + ds.offset[0]) * ds.scale, box.top + (b[1] + ds.offset[1]) * ds.scale,
                           b[2] * ds.scale, b[3] * ds.scale];
  const covering = (rect) => {
    const found = new Set();
    for (let i = 0; i <= 6; i++) {
      for (let j = 0; j <= 6; j++) {
        const x = rect[0] + 2 + (rect[2] - 4) * i / 6, y = rect[1] + 2 + (rect[3] - 4) * j / 6;
        const element = document.elementFromPoint(x, y);
        if (element === null) { found.add(`off-window at ${Math.round(x)},${Math.round(y)}`); continue; }
        if (element === canvas || element.closest('.dom-widget')) continue;
        found.add(`${element.tagName}.${String(element.className).slice(0, 60)}`);
      }
    }
    return Array.from(found);
  };
  const overflow = (element) => {
    let worst = 0;
    for (const e of [element, ...element.querySelectorAll('*')]) {
      const style = getComputedStyle(e);
      if (['auto', 'scroll', 'hidden'].includes(style.overflowY)) {
        worst = Math.max(worst, e.scrollHeight - e.clientHeight);
      }
    }
    return worst;
  };
  const nodes = app.graph._nodes.map((node) => {
    const bounding = Array.from(node.getBounding());
    const screen = toScreen(bounding);
    const widgets = node.widgets || [];
    const note = widgets.find((w) => w.element);
    return {
      id: String(node.id), type: node.type, title: node.title, pos: Array.from(node.pos), size: Array.from(node.size),
      bounding, screen, covered_by: covering(screen),
      controls: widgets.filter((w) => w.name === 'control_after_generate').map((w) => w.value),
      seeds: widgets.filter((w) => ['seed', 'noise_seed'].includes(w.name)).map((w) => w.value),
      title_width: app.canvas.ctx ? (app.canvas.ctx.font = `${LiteGraph.NODE_TEXT_SIZE}px Arial`,
                                     app.canvas.ctx.measureText(node.title || '').width) : 0,
      note_overflow: node.type === 'MarkdownNote' && note ? overflow(note.element) : 0,
      note_text: node.type === 'MarkdownNote' && note ? note.element.innerText.length : 0,
    };
  });
  const groups = (app.graph._groups || app.graph.groups || []).map((g) => {
    const bounding = Array.from(g._bounding || g.bounding);
    return {title: g.title, bounding, screen: toScreen(bounding)};
  });
  return {nodes, groups, scale: ds.scale, offset: Array.from(ds.offset), window: [innerWidth, innerHeight],
          canvas: [box.left, box.top, box.width, box.height]};
}
