from django.urls import path

from generations.sandbox import views

app_name = "sandbox"

urlpatterns = [
    path("openapi/v2/account/balance", views.balance, name="balance"),
    path("openapi/v2/video/text/generate", views.text_generate, name="text-generate"),
    path("openapi/v2/image/upload", views.upload_image, name="image-upload"),
    path("openapi/v2/video/img/generate", views.img_generate, name="img-generate"),
    path("openapi/v2/video/status", views.video_status, name="video-status"),
    path("openapi/v2/video/result/<str:video_id>", views.video_result, name="video-result"),
    path("files/videos/<int:video_id>.mp4", views.video_file, name="video-file"),
    path("files/images/<int:img_id>", views.image_file, name="image-file"),
]
