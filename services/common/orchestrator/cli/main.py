def main() -> None: print("orch")
