"""An agent that leaves the code alone and changes how the phases run instead: it writes the checkout's env file
(phases.env_file), which only knob strategies may do."""
import pathlib

pathlib.Path(".farm-env").write_text("OMP_NUM_THREADS=8\nFIXTURE_REPS=1\n")
