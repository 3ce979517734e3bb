from glora.cli import main

raise SystemExit(main())
