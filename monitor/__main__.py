from monitor.cli import main

if __name__ == "__main__":  # worker processes (forkserver) import this module without running the CLI
    main()
