from mailpulse.cli import main

main()
