"""A decoding control added as docs/extending.md shows (a field of DecodingOptions, read from the page) appears
everywhere it belongs: the eval: config and its --help, the flags of the caption, evaluate, serve and export CLIs,
serving requests, CaptionPipeline, and the checks of each (an out-of-range value refused with the field's name).

The field is added in a fresh interpreter before the rest of the library is imported, as if the file had been edited.
"""
import json
import re
import subprocess
import sys

from conftest import REPO

EXTENDING = REPO / "docs" / "extending.md"

PROBE = r'''
import contextlib, dataclasses, io, json, sys
import modeling.decoding_options as decoding_options

namespace = dict(vars(decoding_options), Base=decoding_options.DecodingOptions)
exec("@dataclasses.dataclass(frozen=True)\nclass DecodingOptions(Base):\n" + sys.argv[1], namespace)
decoding_options.DecodingOptions = namespace["DecodingOptions"]  # as if the field were in the file

from trainer import caption, evaluate_checkpoint, export, serve
from trainer.config.help import config_help
from trainer.config.schema import load_config
from trainer.inference.pipeline import CaptionPipeline
from trainer.serving.controls import request_options
from trainer.serving.limits import RequestError, ServeLimits

found = {"eval": load_config(None, ["data.root=x", "eval.eos_penalty=0.5"]).eval.eos_penalty,
         "config_help": "eval.eos_penalty = 0.0" in config_help()}

def refusal(run):
    try:
        run()
    except (ValueError, RequestError) as error:
        return str(error)
    return None

found["config_error"] = refusal(lambda: load_config(None, ["data.root=x", "eval.eos_penalty=-1"]))
for name, cli in (("caption", caption), ("evaluate", evaluate_checkpoint), ("serve", serve), ("export", export)):
    out, err = io.StringIO(), io.StringIO()
    for argv, stream in ((["--help"], out), (["--checkpoint", "c", "--out", "o", "x", "--eos-penalty", "-1"], err)):
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), contextlib.suppress(SystemExit):
            cli.main(argv)
    found[name] = {"help": out.getvalue(), "error": err.getvalue().strip().splitlines()[-1]}

pipe = CaptionPipeline.from_checkpoint(sys.argv[2])
seen = []
generate = pipe.model.generate
pipe.model.generate = lambda pixels, options, **kwargs: seen.append(options) or generate(pixels, options, **kwargs)
pipe([sys.argv[3]], eos_penalty=0.5)
found["pipeline"] = [options.eos_penalty for options in seen]
found["pipeline_error"] = refusal(lambda: pipe([sys.argv[3]], eos_penalty=-1.0))
found["request"] = request_options({"eos_penalty": "0.5"}, decoding_options.DecodingOptions(), ServeLimits())[0].eos_penalty
found["request_error"] = refusal(lambda: request_options({"eos_penalty": "-1"}, pipe.options(), ServeLimits()))
print(json.dumps(found))
'''


def documented_field() -> str:
    """The first python block of the page's "A decoding control" section: the field's declaration."""
    section = EXTENDING.read_text(encoding="utf-8").split("## A decoding control", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def test_a_documented_control_appears_in_config_clis_serving_and_pipeline(tiny_checkpoint):
    checkpoint, _, images = tiny_checkpoint
    field = documented_field()
    assert "eos_penalty: float = setting(" in field
    completed = subprocess.run([sys.executable, "-c", PROBE, field, str(checkpoint), str(images / "000000.jpg")],
                               cwd=REPO, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    assert found["eval"] == 0.5 and found["config_help"]
    assert found["config_error"] == "config key 'eval.eos_penalty' = -1.0 is out of range: expected 0 <= value"
    for name in ("caption", "evaluate", "serve", "export"):
        assert "--eos-penalty EOS_PENALTY" in found[name]["help"], name
        assert "subtracted from the log-probability of <eos>" in found[name]["help"], name
        assert found[name]["error"].endswith("argument --eos-penalty: must be in [0.0, inf], got -1"), name
    assert found["pipeline"] == [0.5]
    assert found["pipeline_error"] == "eos_penalty must be >= 0, got -1.0"
    assert found["request"] == 0.5 and found["request_error"] == "eos_penalty must be >= 0, got -1.0"

