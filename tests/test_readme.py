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


def test_building_blocks_named_in_the_readme_exist():
    """The names the README's "Building blocks" paragraph uses are tiefnet's (a renamed API fails here)."""
    import numpy as np

    import tiefnet as tn

    text = README.read_text()
    for name in re.findall(r"`tn\.(\w+)", text):
        assert hasattr(tn, name), name
    image = np.zeros((1, 3, 4, 4), dtype=np.float32)
    tn.Adam(0.02).bind(image).step(np.ones_like(image))
    assert image.min() < 0
    assert callable(tn.LSTMCell.step) and callable(tn.Layer.freeze)


def test_every_file_the_readme_and_the_lecture_map_link_is_there():
    """Relative links ([text](path) and ![picture](path)) point at files of the checkout: a rendered
    notebook, a screenshot or a doc that was renamed or never committed fails here."""
    root = README.parent
    for document in (README, root / "docs" / "lecture-map.md"):
        targets = re.findall(r"\]\(([^)\s]+)\)", document.read_text())
        local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
        assert local, f"{document.name} links no file"
        missing = [t for t in local if not (document.parent / t).exists()]
        assert not missing, f"{document.name} links files that are not there: {missing}"
