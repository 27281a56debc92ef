"""The viewer's browser side: the style and the script that drive NiiVue in ``report.html``.

The script reads the config that :mod:`brainage.reporting.viewer` writes into the page, loads a
choice's copies on demand (``<script src>`` from ``viewer/data``: allowed on ``file://`` pages,
unlike ``fetch``), shows the map over its background with the header's display range (red–yellow;
a signed map's negative side blue–cyan, mirrored by NiiVue onto ``[-cal_max, -cal_min]``), puts the
cross-hair on the strongest voxel and names the atlas region under it; ``report.html#map=<i>``
opens choice ``i``. It marks the page's body
``data-viewer="ready"`` (or ``"error"``) so a headless browser can tell how it went.
"""

STYLE = ("<style>#viewer-box{width:100%;height:520px;background:#000}"
         "#viewer-status{font-family:monospace;min-height:1.4em}"
         "#viewer-legend{color:#444}</style>")

CONTROLLER = r"""<script>
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("viewer-config").textContent);
  var status = document.getElementById("viewer-status");
  var legend = document.getElementById("viewer-legend");
  var choice = document.getElementById("viewer-choice");
  var loads = {}, waiting = {}, current = null, nv = null;

  window.brainageViewer = {
    add: function (key, encoded) { if (waiting[key]) { waiting[key](encoded); delete waiting[key]; } }
  };

  function need(key) {
    if (!loads[key]) {
      loads[key] = new Promise(function (resolve, reject) {
        waiting[key] = resolve;
        var script = document.createElement("script");
        script.src = config.data + "/" + key + ".js";
        script.onerror = function () { delete loads[key]; reject(new Error("cannot read " + script.src)); };
        document.head.appendChild(script);
      });
    }
    return loads[key];
  }

  function bytes(encoded) {
    var text = atob(encoded), out = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out.buffer;
  }

  function describe(location) {
    if (!current || !location || !location.values || location.values.length < 2) return;
    var mm = location.mm, value = location.values[1].value, text;
    text = "x " + mm[0].toFixed(1) + "  y " + mm[1].toFixed(1) + "  z " + mm[2].toFixed(1) +
      " mm   R = " + Number(value).toPrecision(3);
    if (config.atlas && location.values.length > 2) {
      var id = Math.round(location.values[2].value);
      text += "   " + (config.atlas.names[id] || "(outside atlas)");
    }
    status.textContent = text;
  }

  async function show(index) {
    var entry = config.entries[index];
    current = null;
    status.textContent = "loading " + entry.caption + " …";
    var keys = [entry.background, entry.map].concat(config.atlas ? [config.atlas.key] : []);
    var data = await Promise.all(keys.map(need));
    var volumes = [
      {url: bytes(data[0]), name: "background.nii.gz", colormap: "gray", colorbarVisible: false},
      {url: bytes(data[1]), name: entry.file, colormap: "redyell",
       colormapNegative: entry.signed ? "blue2cyan" : ""}
    ];
    if (config.atlas) {
      volumes.push({url: bytes(data[2]), name: "atlas.nii.gz", colormap: "gray", opacity: 0,
                    colorbarVisible: false});
    }
    await nv.loadVolumes(volumes);
    current = entry;
    legend.textContent = entry.legend;
    nv.scene.crosshairPos = nv.mm2frac(entry.peak_mm);
    nv.drawScene();
    nv.createOnLocationChange();
  }

  function fail(error) {
    status.textContent = "The viewer could not start here (" + error.message + "). The maps open " +
      "in FSLeyes, NiiVue or MRIcroGL; the static pages below need no WebGL.";
    document.body.dataset.viewer = "error";
  }

  async function start() {
    nv = new window.BrainageNiivue.Niivue({backColor: [0, 0, 0, 1], isColorbar: true,
      logLevel: "warn", dragAndDropEnabled: false, show3Dcrosshair: true,
      crosshairColor: [0, 1, 0, 0.8], crosshairWidth: 1});
    nv.onLocationChange = describe;
    await nv.attachToCanvas(document.getElementById("viewer-canvas"));
    var asked = /^#map=(\d+)$/.exec(window.location.hash);  // report.html#map=3 opens choice 3
    var first = asked && Number(asked[1]) < config.entries.length ? Number(asked[1]) : 0;
    choice.value = String(first);
    await show(first);
    document.body.dataset.viewer = "ready";
    choice.addEventListener("change", function () { show(Number(choice.value)).catch(fail); });
  }

  if (!window.BrainageNiivue) {
    fail(new Error("viewer/niivue.js did not load"));
  } else {
    start().catch(fail);
  }
})();
</script>"""
