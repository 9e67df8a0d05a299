// A table wider than the column scrolls in its own box (book.css); on a phone that box looks
// like a table cut off. A table that scrolls gets a line above it saying so, and a shadow on the
// side that has more columns, until the reader has scrolled there.
(function () {
  const TABLES = ".cell_output table, article table.table";
  function cue(table) {
    let line = table.previousElementSibling;
    const has = line && line.classList.contains("bn-scroll-cue");
    const scrolls = table.scrollWidth > table.clientWidth + 1;
    if (scrolls && !has) {
      line = document.createElement("p");
      line.className = "bn-scroll-cue";
      line.textContent = "Scroll the table sideways for more columns →";
      table.parentNode.insertBefore(line, table);
    } else if (!scrolls && has) {
      line.remove();
    }
    table.classList.toggle("bn-scrolls", scrolls);
    table.classList.toggle("bn-more-left", scrolls && table.scrollLeft > 1);
    table.classList.toggle("bn-more-right",
      scrolls && table.scrollLeft + table.clientWidth < table.scrollWidth - 1);
  }
  function setup() {
    const tables = [...document.querySelectorAll(TABLES)];
    // checked again whenever a table or its rows change size (fonts, typeset maths, a window)
    const watch = "ResizeObserver" in window
      ? new ResizeObserver((es) => es.forEach((e) => cue(e.target.closest("table")))) : null;
    tables.forEach((t) => {
      cue(t);
      t.addEventListener("scroll", () => cue(t), { passive: true });
      if (watch) [t, ...t.children].forEach((el) => watch.observe(el));
    });
    const all = () => tables.forEach(cue);
    window.addEventListener("resize", all);
    window.addEventListener("load", all);
    if (document.fonts) document.fonts.ready.then(all);
    // a folded table (a closed <details>) is laid out only when opened
    document.querySelectorAll("details").forEach((d) => d.addEventListener("toggle", all));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
