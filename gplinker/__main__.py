from gplinker.cli import app

app(prog_name="gplinker")
