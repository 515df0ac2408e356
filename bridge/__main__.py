from vbridge.cli import main

main()
