"""Fixed-point export: shipped int weights derive from the shipped float
student, the integer forward tracks the float one, nonlinearity table."""
import math
from pathlib import Path

import numpy as np
import torch

from pocnet.models.export import export_student, sigmoid_lut
from pocnet.models.features import ONE
from pocnet.models.net import allocate_float, load_net, param_count
from pocnet.models.quant import allocate_int_logits, load_quant, quant_to_dict
from pocnet.models.scenario import generate_scenario

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"


def test_shipped_int_weights_are_export_of_shipped_student():
    q = export_student(load_net(str(WEIGHTS / "student.pt")))
    assert quant_to_dict(q) == quant_to_dict(load_quant(WEIGHTS / "student_q.json"))


def test_student_much_smaller_than_teacher():
    t, s = load_net(str(WEIGHTS / "teacher.pt")), load_net(str(WEIGHTS / "student.pt"))
    assert param_count(s) * 5 < param_count(t)
    assert (WEIGHTS / "student_q.json").stat().st_size < 100_000


def test_sigmoid_table_accuracy():
    x_min, lut = sigmoid_lut()
    xs = np.arange(x_min, -x_min, 97)
    idx = (xs - x_min) >> 5
    err = max(abs(lut[k] / ONE - 1 / (1 + math.exp(-x / ONE))) for k, x in zip(idx, xs))
    assert err < 0.01


def test_int_path_tracks_float_student():
    torch.set_num_threads(1)
    student, q = load_net(str(WEIGHTS / "student.pt")), load_quant()
    same, total = 0, 0
    for seed in range(8):
        scn = generate_scenario(10_000 + seed)
        fa, fp = allocate_float(student, scn)
        ia, il = allocate_int_logits(q, scn)
        same += int((fa == ia).sum())
        total += scn.n_tasks
        assert il.dtype == np.int64 and (ia == il.argmax(axis=1)).all()
    assert same / total >= 0.9
