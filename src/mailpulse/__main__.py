from mailpulse.cli import app

app()
