"""The tensorflow/torchvision import-order hazard (importing torchvision after tensorflow segfaults in triton;
see mammogan_lib/core/frameworks.py), checked in fresh subprocesses."""

import subprocess
import sys

import pytest

from mammogan_lib.core import frameworks


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_torch_side_after_keras_is_refused_with_a_clear_error_not_a_crash():
    done = run_python(
        "from mammogan_lib.core import frameworks\n"
        "frameworks.import_keras()\n"
        "try:\n"
        "    frameworks.import_torch_side()\n"
        "except RuntimeError as error:\n"
        "    print('REFUSED:', error)\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REFUSED: tensorflow is already imported" in done.stdout


@pytest.mark.slow
def test_torch_side_first_then_keras_works_in_one_process():
    done = run_python(
        "from mammogan_lib.core import frameworks\n"
        "torch, torchvision = frameworks.import_torch_side()\n"
        "keras = frameworks.import_keras()\n"
        "print('OK', keras.backend.backend(), torchvision.__version__)\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("OK tensorflow")


# Keras picks its backend when first imported, and TensorFlow before torchvision crashes: so importing any
# module but the models and the backends' steps (which import Keras themselves, and are imported inside the
# functions that build or run models) must load no framework.
KERAS_AT_IMPORT = (
    "mammogan_lib.gan.models",
    "mammogan_lib.gan.backends.tensorflow_step",
    "mammogan_lib.gan.backends.jax_step",
    "mammogan_lib.gan.backends.torch_step",
    "mammogan_lib.bench.classic",
)


def test_importing_any_module_but_the_models_and_steps_loads_no_framework():
    done = run_python(
        "import importlib, pathlib, sys\n"
        "import mammogan_lib\n"
        f"keras_side = {KERAS_AT_IMPORT!r}\n"
        "root = pathlib.Path(mammogan_lib.__file__).parent\n"
        "files = [p.relative_to(root.parent).with_suffix('') for p in sorted(root.rglob('*.py'))]\n"
        "names = ['.'.join(f.parts).removesuffix('.__init__') for f in files]\n"
        "names = [n for n in names if not n.startswith(keras_side) and not n.endswith('__main__')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names), sorted(m for m in ('keras', 'tensorflow', 'torch', 'jax') if m in sys.modules))\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    count, loaded = done.stdout.strip().split(" ", 1)
    assert int(count) > 60 and loaded == "[]", done.stdout


def test_an_unknown_keras_backend_is_refused(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    with pytest.raises(RuntimeError, match="KERAS_BACKEND is 'numpy'; the GAN runs on one of"):
        frameworks.import_keras()


@pytest.mark.slow
def test_the_backend_parameter_must_agree_with_the_loaded_keras_and_the_environment(monkeypatch):
    frameworks.import_keras()  # tensorflow, as conftest sets it
    with pytest.raises(RuntimeError, match="parameter 'backend' is 'jax' but Keras is already loaded on"):
        frameworks.use_backend("jax")
    frameworks.use_backend("tensorflow")  # agrees: nothing to do
    with pytest.raises(ValueError, match="parameter 'backend': 'theano' is not one of"):
        frameworks.use_backend("theano")
    done = run_python(
        "import os\n"
        "os.environ['KERAS_BACKEND'] = 'torch'\n"
        "from mammogan_lib.core import frameworks\n"
        "try:\n"
        "    frameworks.use_backend('jax')\n"
        "except RuntimeError as error:\n"
        "    print('REFUSED:', error)\n"
        "os.environ.pop('KERAS_BACKEND')\n"
        "frameworks.use_backend('torch')\n"
        "keras = frameworks.import_keras()\n"
        "print('LOADED', keras.backend.backend(), 'tensorflow' in __import__('sys').modules)\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "REFUSED: parameter 'backend' is 'jax' but the environment sets KERAS_BACKEND='torch'" in done.stdout
    )
    assert "LOADED torch False" in done.stdout  # the torch backend never loads tensorflow


def test_jax_and_torch_say_they_train_on_one_of_several_visible_gpus(monkeypatch, capsys):
    from mammogan_lib.gan import distribute, precision

    two = [precision.GpuInfo("Tesla T4", (7, 5))] * 2
    monkeypatch.setattr(precision, "gpu_devices", lambda: two)
    for backend in ("jax", "torch"):
        monkeypatch.setattr(frameworks, "selected_backend", lambda backend=backend: backend)
        assert distribute.training_devices(data_parallel=True) is None
        said = capsys.readouterr().out
        assert f"2 GPUs are visible, but the {backend} backend trains on one of them" in said
        assert distribute.training_devices(data_parallel=False) is None
        assert capsys.readouterr().out == ""  # one device was asked for: nothing to say
    monkeypatch.setattr(precision, "gpu_devices", lambda: two[:1])
    assert distribute.training_devices(data_parallel=True) is None and capsys.readouterr().out == ""
