from picotui.cli import main

raise SystemExit(main())
