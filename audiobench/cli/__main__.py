from audiobench.cli import main

main()
