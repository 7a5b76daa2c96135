"""Pictures: the class palette, colour masks and overlays, instance overlays, dashboard panels and the confusion matrix, and the validation-media callback."""
