"""Train a segmentation model: ``python train.py model=deeplabv3plus data=cityscapes`` (``python -m seglab train``)."""

from seglab.commands.entry import train_main

if __name__ == "__main__":
    train_main()
