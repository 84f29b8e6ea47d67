from asset_studio.cli import main

raise SystemExit(main())
