from asset_studio.cli import console_main

raise SystemExit(console_main())
