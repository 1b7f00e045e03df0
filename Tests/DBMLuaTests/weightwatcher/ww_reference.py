"""WeightWatcher 0.7.7's default analysis of the matrices DIR/flat/*.weight.npy (written by heavy_tailed.lua),
one JSON line per matrix: its key (the file name without .npy) and WeightWatcher's figures. Runs WeightWatcher's
own pipeline, `WeightWatcher().analyze(model=DIR/flat)` on its flat-file format (a folder of *.weight.npy and a
ww_config.json listing them as dense layers), which needs no deep-learning framework.
Usage: python3 ww_reference.py DIR"""
import contextlib, glob, io, json, os, sys

import numpy as np

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    import weightwatcher as ww

assert ww.__version__ == "0.7.7", f"expected weightwatcher 0.7.7, got {ww.__version__}"
flat = os.path.abspath(os.path.join(sys.argv[1], "flat"))
layers = {}
for i, path in enumerate(sorted(glob.glob(f"{flat}/*.weight.npy"))):
    key = os.path.basename(path)[:-len(".npy")]
    shape = np.load(path, mmap_mode="r").shape
    layers[i] = {"key": key, "name": key, "longname": key, "weightfile": os.path.basename(path),
                 "biasfile": None, "type": "dense", "dims": json.dumps(list(shape))}
with open(f"{flat}/ww_config.json", "w") as f:
    json.dump({"weights_dir": flat, "layers": layers}, f)

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    details = ww.WeightWatcher().analyze(model=flat)
for _, row in details.iterrows():
    out = {"name": row["name"]}
    for k in ["alpha", "xmin", "D", "sigma", "num_pl_spikes", "alpha_weighted", "log_alpha_norm", "lambda_max",
              "matrix_rank", "rank_loss", "log_norm", "log_spectral_norm", "stable_rank"]:
        out[k] = float(row[k])
    out["warning"] = row["warning"]
    print(json.dumps(out))
