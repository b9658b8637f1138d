from sealmail.cli import main

main()
