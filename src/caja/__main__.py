from caja.cli import main

main()
