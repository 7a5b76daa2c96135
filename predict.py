"""Segment images with a checkpoint: ``python predict.py ckpt_path=<ckpt> input=<images>`` (``python -m seglab predict``)."""

from seglab.commands.entry import predict_main

if __name__ == "__main__":
    predict_main()
