import DBMLua
DBMLua.CommandLine.main()
