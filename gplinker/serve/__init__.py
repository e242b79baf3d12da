"""`gplinker serve`: the HTTP app (`app`), its micro-batcher (`batcher`), request checks (`requests`), the page.

The web page is plain static files (`static/`). Needs the `serve` extra (FastAPI + uvicorn):
`pip install gplinker[serve]`.
"""
