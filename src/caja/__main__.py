from caja.entry import main

main()
