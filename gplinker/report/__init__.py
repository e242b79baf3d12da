"""The HTML report of `gplinker eval --report`: one self-contained file (`html`), built from the type confusion of
wrong-typed items (`confusion`), the training curves of the model's run (`curves`) and the errors drawn like the page
of `gplinker serve` (`marked_records`).
"""
