// The campaign home's charts: drawn from the JSON the live fragment carries (#campaign-home-data), and
// updated in place after each poll (the canvases survive the swap through hx-preserve), so nothing flickers.
(function () {
  "use strict";
  const STATE_COLOURS = ["#d0d5dd", "#fdb022", "#12b76a"];
  const SOURCE_COLOURS = { human: "#3e63dd", judge: "#f79009" };

  function data() {
    const node = document.getElementById("campaign-home-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function hourLabel(iso) {
    // "2026-12-02T14:00:00+00:00" -> "14:00", with the date at midnight and on the first bar.
    const time = iso.slice(11, 16);
    return time === "00:00" ? iso.slice(5, 10) + " " + time : time;
  }

  // Create the chart on its canvas, or give the existing one the new figures.
  function show(id, build) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    const config = build();
    const chart = Chart.getChart(canvas);
    if (!chart) {
      new Chart(canvas, config);
      return;
    }
    chart.data.labels = config.data.labels;
    config.data.datasets.forEach((dataset, i) => {
      if (chart.data.datasets[i]) Object.assign(chart.data.datasets[i], { data: dataset.data, label: dataset.label });
      else chart.data.datasets.push(dataset);
    });
    chart.data.datasets.length = config.data.datasets.length;
    chart.update("none");
  }

  function draw() {
    if (typeof Chart === "undefined") return;
    const d = data();
    if (!d) return;
    show("items-chart", () => ({
      type: "bar",
      data: {
        labels: d.routes,
        datasets: d.states.map((state, i) => ({
          label: state.label,
          data: d.routes.map((route) => d.items[route][i]),
          backgroundColor: STATE_COLOURS[i],
        })),
      },
      options: {
        animation: false, indexAxis: "y", maintainAspectRatio: false,
        scales: { x: { stacked: true, beginAtZero: true, title: { display: true, text: "items" } }, y: { stacked: true } },
      },
    }));
    show("hourly-chart", () => ({
      type: "bar",
      data: {
        labels: d.hourly.hours.map(hourLabel),
        datasets: [
          { label: "human labels", data: d.hourly.human, backgroundColor: SOURCE_COLOURS.human },
          { label: "judge labels", data: d.hourly.judge, backgroundColor: SOURCE_COLOURS.judge },
        ],
      },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "labels" } } },
      },
    }));
    show("budget-chart", () => ({
      type: "doughnut",
      data: {
        labels: ["given", "still planned"],
        datasets: [{ label: "human labels", data: [d.budget.done, d.budget.remaining], backgroundColor: [SOURCE_COLOURS.human, "#e4e7ec"] }],
      },
      options: { animation: false, maintainAspectRatio: false, cutout: "60%" },
    }));
    show("judges-chart", () => ({
      type: "bar",
      data: {
        labels: d.judges.map((j) => j.judge),
        datasets: [{ label: "cost so far", data: d.judges.map((j) => j.cost), backgroundColor: SOURCE_COLOURS.judge }],
      },
      options: { animation: false, indexAxis: "y", maintainAspectRatio: false, scales: { x: { beginAtZero: true } } },
    }));
  }

  // After any swap (the live fragment, or the state and stranded panels loading): updating a chart with
  // the figures it already shows costs nothing, and the event's target after an outerHTML swap varies.
  document.addEventListener("htmx:afterSettle", draw);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
