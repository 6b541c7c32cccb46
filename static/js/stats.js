// The statistics dashboard's charts, drawn from JSON the page embeds (json_script): no other request.
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
  function drawRouting() {
    const routing = data("stats-routing");
    const canvas = document.getElementById("routing-curve");
    if (!routing || !routing.curve || !canvas || typeof Chart === "undefined") return;
    // The campaign's policy, then random, then the ceiling (the stored JSON keeps no key order).
    const rank = (name) => (name === routing.policy ? 0 : name === "random" ? 1 : 2);
    const names = Object.keys(routing.curve).sort((a, b) => rank(a) - rank(b));
    new Chart(canvas, {
      type: "line",
      data: {
        datasets: names.map((name) => ({
          label: name,
          data: routing.curve[name].map((p) => ({ x: p.budget * 100, y: p.accuracy * 100 })),
          borderDash: name === "oracle" ? [6, 4] : [],
        })).concat([{
          label: "your budget",
          type: "scatter",
          // The curves are for the items outside the calibration slice: the point is the budget left for them.
          data: (routing.curve[routing.policy] || [])
            .filter((p) => p.budget === routing.rest_fraction)
            .map((p) => ({ x: p.budget * 100, y: p.accuracy * 100 })),
          pointRadius: 7,
        }]),
      },
      options: {
        animation: false,
        parsing: true,
        scales: {
          x: { type: "linear", min: 0, max: 100, title: { display: true, text: "items outside the calibration slice routed to humans (%)" } },
          y: { suggestedMax: 100, title: { display: true, text: "agreement with human consensus (%)" } },
        },
      },
    });
  }
  function drawAll() {
    draw();
    drawRouting();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
