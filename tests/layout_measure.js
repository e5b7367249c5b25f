/* Every table cell and button (visible, outside <pre>) whose text holds a word the box
   breaks across lines, or a cell narrower than four characters holding a longer word.
   Evaluated by tests/test_layout_browser.py. */
() => {
  const found = [];
  const ch = (el) => {
    const probe = document.createElement("span");
    probe.textContent = "0000";
    probe.style.font = getComputedStyle(el).font;
    probe.style.position = "absolute"; probe.style.visibility = "hidden";
    document.body.appendChild(probe);
    const w = probe.getBoundingClientRect().width / 4;
    probe.remove();
    return w;
  };
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  for (const box of document.querySelectorAll("td, th, button")) {
    if (!visible(box) || box.closest("pre")) continue;
    const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    let longest = 0;
    while (walker.nextNode()) {
      const node = walker.currentNode;
      if (node.parentElement.closest("pre")) continue;
      // a test id's pieces (between "/" and "::") are words; elsewhere a "-" or "/" may end a line
      const re = node.parentElement.closest(".nodeid") ? /\S+/g : /[^\s\/-]+[\/-]?/g;
      let m;
      while ((m = re.exec(node.textContent))) {
        longest = Math.max(longest, m[0].length);
        if (m[0].length < 2) continue;
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set(Array.from(range.getClientRects()).filter((r) => r.width > 0).map((r) => Math.round(r.top)));
        if (tops.size > 1) found.push("broken word " + JSON.stringify(m[0]) + " in <" + box.tagName.toLowerCase() + ">");
      }
    }
    const width = box.getBoundingClientRect().width;
    if (longest > 4 && width < 4 * ch(box)) found.push("cell " + Math.round(width) + "px holds " + JSON.stringify(box.textContent.trim().slice(0, 40)));
  }
  return found;
}
