// The weft dashboard's live updates: one EventSource per page that follows a run
// (`data-events` on <body>). `state` recolours the graph's nodes and refreshes the task
// table and the run's facts; `log` appends lines to the log view; `end` closes the
// stream (the run ended). Text only ever goes in through textContent: nothing the server
// sends is parsed as HTML.
"use strict";
(function () {
  var url = document.body && document.body.getAttribute("data-events");
  if (!url || !window.EventSource) { return; }
  var TONES = ["ok", "warn", "fail", "skip", "cancel", "run", "wait", "queue", "pending"];

  function tone(name) { return TONES.indexOf(name) >= 0 ? name : "pending"; }

  // As svg.rs and pages.rs say it: the table's status, the node's state with its reason.
  function statusLine(task) {
    return task.waiting ? "waits: " + task.waiting : task.status;
  }

  function nodeLine(task) {
    return task.waiting ? "waits: " + task.waiting : task.summary;
  }

  // Elements carrying data-task="NAME" (compared as text: no selector is built from it).
  function byTask(selector, name) {
    var found = [];
    var all = document.querySelectorAll(selector);
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute("data-task") === name) { found.push(all[i]); }
    }
    return found;
  }

  function setText(el, text) { if (el) { el.textContent = text; } }

  function fit(text, max) {
    return text.length <= max ? text : text.slice(0, max - 1) + "\u2026";
  }

  function onState(state) {
    var status = document.getElementById("run-status");
    if (status) {
      setText(status, state.status);
      // As pages.rs's run_tone.
      var runTone = "run";
      if (state.finished) {
        var s = state.status;
        runTone = s === "Succeeded" || s === "Completed" ? "ok"
          : s === "SucceededWithWarnings" ? "warn"
          : (s.indexOf("Cancel") >= 0 || s === "Superseded") ? "cancel"
          : s === "Skipped" ? "skip" : "fail";
      }
      status.setAttribute("class", "badge tone-" + runTone);
    }
    setText(document.getElementById("run-reason"), state.reason);
    setText(document.getElementById("run-operation"), state.operation || "-");
    setText(document.getElementById("run-waiting"), state.waitingFor || "-");
    var logView = document.getElementById("log");
    state.tasks.forEach(function (task) {
      var t = tone(task.tone);
      byTask("g.node", task.task).forEach(function (node) {
        node.setAttribute("class", "node tone-" + t);
        setText(node.querySelector("title"), task.task + ": " + task.summary);
        setText(node.querySelector("text.status"), fit(nodeLine(task), 24));
      });
      byTask("tr[data-task]", task.task).forEach(function (row) {
        var badge = row.querySelector("td.status .badge");
        if (badge) {
          badge.setAttribute("class", "badge tone-" + t);
          setText(badge, statusLine(task));
        }
        setText(row.querySelector("td.reason"), task.reason);
        setText(row.querySelector("td.attempts"), String(task.attempts));
        setText(row.querySelector("td.exit"), task.exitCode === null || task.exitCode === undefined ? "" : String(task.exitCode));
      });
      if (logView && logView.getAttribute("data-task") === task.task) {
        var badge = document.getElementById("task-status");
        if (badge) {
          badge.setAttribute("class", "badge tone-" + t);
          setText(badge, statusLine(task));
        }
      }
    });
    // Forms that no longer apply go (the server would refuse them anyway): a decision
    // once its task stops waiting, a cancel once the run ended.
    var waiting = {};
    state.tasks.forEach(function (task) { if (task.waiting) { waiting[task.task] = true; } });
    var decisions = document.querySelectorAll("div.wait[data-wait] form.decide");
    for (var i = 0; i < decisions.length; i++) {
      var wait = decisions[i].parentNode;
      if (!Object.prototype.hasOwnProperty.call(waiting, wait.getAttribute("data-wait"))) {
        wait.removeChild(decisions[i]);
      }
    }
    if (state.finished) {
      var cancels = document.querySelectorAll("form.cancel");
      for (var j = 0; j < cancels.length; j++) { cancels[j].parentNode.removeChild(cancels[j]); }
    }
    document.body.setAttribute("data-run-state", state.finished ? "finished" : "running");
  }

  function onLog(batch) {
    var logView = document.getElementById("log");
    if (!logView) { return; }
    batch.lines.forEach(function (line) {
      var span = document.createElement("span");
      span.className = "line";
      span.setAttribute("data-stream", line.stream);
      span.textContent = line.text;
      logView.appendChild(span);
      logView.appendChild(document.createTextNode("\n"));
    });
  }

  var source = new EventSource(url);
  function parsed(handler) {
    return function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      handler(data);
    };
  }
  source.addEventListener("state", parsed(onState));
  source.addEventListener("log", parsed(onLog));
  source.addEventListener("end", function () {
    source.close();
    document.body.setAttribute("data-run-state", "finished");
  });
})();
