"""The embedded world: everything that makes synthbridge run offline on a 2-core CPU in minutes.

A plugin of the product, never imported by it: `synthbridge.embedded.plugin` (the entry point
`synthbridge.plugins: embedded`) registers its datasets (`mnist5k`, `digits`), its timm backbones
(`mini_resnet`, `mini_vit`), its generator name (`mini`) and its font-render synthetic source
(`render`). Delete this folder and the product still runs at full scale.

    datasets.py   the digit datasets shipped by PyPI packages
    models.py     the tiny timm backbones; backbones.py builds their weights (`build-backbones`)
    glyphs/       the procedural glyph renderer (fonts, pen strokes, textures, composition, captions)
    render.py     `render`: font digits as a synthetic source (a baseline without a diffusion model)
    corpus.py     the generator's training corpus; build.py trains it (`build-generator`)
    fidelity.py   `fidelity`: are the generator's digits recognisable and varied?
    tiny.py       tiny random Stable Diffusion folders for tests
    demo.py       `demo`: the embedded study end to end
    assets/       the shipped weights (backbones/, generator/), with the commands that made them
"""
