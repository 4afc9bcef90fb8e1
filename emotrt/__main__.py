from emotrt.cli import main

main()
