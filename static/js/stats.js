// The statistics dashboard's two charts, drawn from JSON the page embeds (json_script): no other request.
(function () {
  "use strict";
  function data(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function draw() {
    if (typeof Chart === "undefined") return;
    const history = data("stats-history");
    const alphaCanvas = document.getElementById("alpha-over-time");
    if (history && history.length && alphaCanvas) {
      const names = Object.keys(history[history.length - 1].alpha);
      new Chart(alphaCanvas, {
        type: "line",
        data: {
          labels: history.map((h) => h.at.slice(0, 19).replace("T", " ")),
          datasets: names.map((name) => ({ label: name, data: history.map((h) => h.alpha[name]), spanGaps: true })),
        },
        options: { animation: false, scales: { y: { suggestedMin: 0, suggestedMax: 1, title: { display: true, text: "Krippendorff's α (ordinal)" } } } },
      });
    }
    const board = data("stats-leaderboard");
    const boardCanvas = document.getElementById("leaderboard-chart");
    if (board && board.length && boardCanvas) {
      new Chart(boardCanvas, {
        type: "bar",
        data: {
          labels: board.map((r) => r.model),
          datasets: [
            { label: "95 % interval", data: board.map((r) => (r.ci95 ? [r.ci95[0], r.ci95[1]] : null)) },
            { label: "rating", type: "scatter", data: board.map((r, i) => ({ x: r.rating, y: i })) },
          ],
        },
        options: { animation: false, indexAxis: "y", scales: { x: { title: { display: true, text: "rating" } } } },
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
