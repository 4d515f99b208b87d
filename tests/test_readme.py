"""The README's first example runs as printed (with one epoch instead of thirty)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_trains():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = blocks[0].replace("epochs=30", "epochs=1").replace("progress=True", "progress=False")
    namespace: dict = {}
    exec(compile(example, str(README), "exec"), namespace)  # noqa: S102 - our own README
    net, mnist = namespace["net"], namespace["mnist"]
    import tiefnet as tn

    _, accuracy = tn.evaluate(net, tn.Quadratic(), tn.train.as_data(mnist.test, 10))
    assert accuracy > 0.85  # one epoch of the lecture's network: about 91-93 %
