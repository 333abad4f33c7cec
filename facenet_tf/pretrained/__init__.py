"""Pretrained face-recognition networks imported from other libraries (nothing is downloaded).

``dlib_format`` reads dlib's DNN files with numpy alone, ``dlib_resnet`` rebuilds dlib's
ResNet face-recognition network as a Keras model, the chips it expects are cut by :mod:`facenet_tf.faces.chips`.
"""
