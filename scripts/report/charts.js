// The report's four charts, drawn with Chart.js from the figures scripts/html_report.py
// put in the page (#figures). Each chart leaves what it holds on its <figure> as
// data-figures, read from the chart itself, so a reader (or a test) can check its numbers.
"use strict";
(function () {
  const figures = JSON.parse(document.getElementById("figures").textContent);
  const palette = [
    "#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6",
    "#06b6d4", "#ec4899", "#84cc16", "#a16207", "#64748b",
  ];
  const modelNames = {
    first_touch: "First touch",
    last_touch: "Last touch",
    last_non_direct: "Last non-direct",
    linear: "Linear",
    position_based: "Position-based",
    time_decay: "Time decay",
  };
  const count = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
  const money = new Intl.NumberFormat("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const percent = new Intl.NumberFormat("en", { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });

  // Drawn at once, not animated: what the page shows is final when it has loaded.
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  function draw(name, config) {
    const figure = document.querySelector('figure[data-chart="' + name + '"]');
    const chart = new Chart(figure.querySelector("canvas"), config);
    figure.dataset.figures = JSON.stringify({
      labels: chart.data.labels,
      datasets: chart.data.datasets.map(function (dataset, index) {
        return {
          label: dataset.label,
          data: dataset.data,
          drawn: chart.getDatasetMeta(index).data.length,
        };
      }),
    });
    return chart;
  }

  function bars(labels, datasets, options) {
    return {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: Object.assign(
        {
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        },
        options || {}
      ),
    };
  }

  function tooltip(format) {
    return {
      callbacks: {
        label: function (item) {
          return " " + item.dataset.label + ": " + format(item.parsed[item.chart.options.indexAxis === "y" ? "x" : "y"]);
        },
      },
    };
  }

  // Header.
  const totals = figures.totals;
  text("subtitle", totals.leads ? figures.source + ", leads created " + totals.first_month + " to " + totals.last_month : figures.source + ": no leads yet");
  [
    ["Leads", count.format(totals.leads)],
    ["Conversions", count.format(totals.conversions)],
    ["Conversion rate", totals.leads ? percent.format(totals.conversions / totals.leads) : "-"],
    ["Value", money.format(totals.value)],
  ].forEach(function (pair) {
    const item = document.createElement("li");
    const strong = document.createElement("strong");
    strong.textContent = pair[1];
    item.append(strong, pair[0]);
    document.getElementById("totals").append(item);
  });
  text("generated", "Generated " + figures.generated + " from the marts channel_attribution and conversion_paths.");

  // 1. Leads and conversions per month, by channel: stacked bars.
  const monthly = figures.monthly;
  text("monthly-model", modelNames[monthly.model]);
  ["leads", "conversions"].forEach(function (measure) {
    draw("monthly-" + measure, bars(
      monthly.months,
      monthly.channels.map(function (channel, index) {
        return { label: channel.label, data: channel[measure], backgroundColor: palette[index % palette.length] };
      }),
      {
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } }, tooltip: tooltip(count.format) },
      }
    ));
  });

  // 2. Credited conversions and value by channel, one bar per model.
  const byChannel = figures.by_channel;
  [["conversions", count.format], ["value", money.format]].forEach(function (pair) {
    draw("credited-" + pair[0], bars(
      byChannel.channels,
      figures.models.map(function (model, index) {
        return { label: modelNames[model], data: byChannel.models[model][pair[0]], backgroundColor: palette[index] };
      }),
      { plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } }, tooltip: tooltip(pair[1]) } }
    ));
  });

  // 3. Top conversion paths: conversions, with a table of their figures.
  const paths = figures.paths;
  draw("top-paths", bars(
    paths.map(function (path) { return path.path; }),
    [{ label: "Conversions", data: paths.map(function (path) { return path.conversions; }), backgroundColor: palette[0] }],
    { indexAxis: "y", plugins: { legend: { display: false }, tooltip: tooltip(count.format) } }
  ));
  const body = document.querySelector("#paths-table tbody");
  paths.forEach(function (path) {
    const row = document.createElement("tr");
    [path.path, count.format(path.leads), count.format(path.conversions),
      percent.format(path.leads ? path.conversions / path.leads : 0), money.format(path.value)].forEach(function (value) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    });
    body.append(row);
  });

  // 4. Cost per conversion by campaign and model, where spend exists.
  const cost = figures.cost;
  if (!cost) {
    document.querySelector('figure[data-chart="cost-per-conversion"]').remove();
    text("cost-text", "No ad spend in this warehouse: set the dbt var ad_spend (the dbt utilities' ad_spend setting) to a table of spend per day and campaign, and this chart shows what each conversion cost (docs/models.md).");
  } else {
    draw("cost-per-conversion", bars(
      cost.campaigns,
      figures.models.map(function (model, index) {
        return { label: modelNames[model], data: cost.models[model], backgroundColor: palette[index] };
      }),
      { plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } }, tooltip: tooltip(money.format) } }
    ));
    if (cost.without_conversions.length) {
      text("cost-note", "Spend without a credited conversion under any model: " + cost.without_conversions.map(function (campaign) {
        return campaign.campaign + " (" + money.format(campaign.spend) + ")";
      }).join(", ") + ".");
    }
  }

  document.documentElement.dataset.drawn = "true";
})();
