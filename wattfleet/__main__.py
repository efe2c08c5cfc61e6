from wattfleet.cli import main

raise SystemExit(main())
