// Bundle progress without reloading the page: each running export's bar asks
// the export's status once a second and moves; when the job ends the page is
// shown again once, with the download form or the error. Without JavaScript
// the page's "show the latest progress" link does the same by hand.
(function () {
  var items = document.querySelectorAll("[data-export-status]");
  Array.prototype.forEach.call(items, function (item) {
    var url = item.getAttribute("data-export-status");
    var bar = item.querySelector("progress");
    var text = item.querySelector("[data-progress-text]");
    function poll() {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", url);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.addEventListener("load", function () {
        var job = null;
        try { job = JSON.parse(xhr.responseText); } catch (e) { job = null; }
        if (xhr.status !== 200 || !job) { window.setTimeout(poll, 3000); return; }
        if (job.status === "queued" || job.status === "running") {
          bar.value = job.progress;
          text.textContent = job.progress + "%";
          window.setTimeout(poll, 1000);
        } else {
          window.location.reload();
        }
      });
      xhr.addEventListener("error", function () { window.setTimeout(poll, 3000); });
      xhr.send();
    }
    window.setTimeout(poll, 1000);
  });
})();
