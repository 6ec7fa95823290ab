print("runsc-bench: sections are added by later work")
