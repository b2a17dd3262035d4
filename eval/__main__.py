"""`python -m eval --model M --benchmark B ...`: see eval/run.py."""

from eval.run import main

if __name__ == "__main__":
    main()
