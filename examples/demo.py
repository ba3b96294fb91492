"""A file to try dg-lsp on: `scripts/run` fills in line 8 after `out.append(`."""


def fibonacci(n: int) -> list[int]:
    """The first n Fibonacci numbers."""
    out = [0, 1]
    while len(out) < n:
        out.append(
    return out[:n]


if __name__ == "__main__":
    print(fibonacci(10))
