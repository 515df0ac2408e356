from vbridge.entry_point import main

main()
