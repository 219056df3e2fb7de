// The Spring app of tests/e2e_frameworks.py: routes only, no business.
//
// Spring MVC as Debian 12 ships it (libspring-web-servlet-java 4.3.30) on
// an embedded Tomcat (libtomcat9-java 9.0.70), the way Spring Boot 1.x ran
// an application: a DispatcherServlet on "/" with the handler mapping and
// adapter @EnableWebMvc makes, at their defaults (RequestMappingHandlerMapping:
// suffix pattern and trailing-slash matching on, UrlPathHelper dropping
// ";params" and decoding once), behind HiddenHttpMethodFilter, which Boot
// registered by default until 2.2. They are registered as plain beans, not
// through @EnableWebMvc: Debian's Spring 4.3 fails to CGLIB-enhance a
// @Configuration class (IllegalArgumentException in its repackaged ASM). Each route answers
// "RAN <method> <route>" with the method its handler sees.
// Compiled by the test with ECJ (libeclipse-jdt-core-java, a dependency of
// libtomcat9-java): no JDK needed. Usage: java -cp ... SpringApp PORT WORKDIR
import javax.servlet.http.HttpServletRequest;
import org.apache.catalina.Context;
import org.apache.catalina.startup.Tomcat;
import org.apache.tomcat.util.descriptor.web.FilterDef;
import org.apache.tomcat.util.descriptor.web.FilterMap;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.support.AnnotationConfigWebApplicationContext;
import org.springframework.web.filter.HiddenHttpMethodFilter;
import org.springframework.web.servlet.DispatcherServlet;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping;

public class SpringApp {
    @RestController
    public static class Routes {
        private static String ran(HttpServletRequest r, String route) {
            return "RAN " + r.getMethod() + " " + route + "\n";
        }

        @RequestMapping("/v1/orders")
        public String orders(HttpServletRequest r) {
            return ran(r, "orders");
        }

        @RequestMapping("/v1/orders/{id}")
        public String order(HttpServletRequest r) {
            return ran(r, "order");
        }

        @RequestMapping("/v1/admin/users")
        public String admin(HttpServletRequest r) {
            return ran(r, "admin");
        }
    }

    public static void main(String[] args) throws Exception {
        Tomcat tomcat = new Tomcat();
        tomcat.setBaseDir(args[1]);
        tomcat.setPort(Integer.parseInt(args[0]));
        tomcat.getConnector().setProperty("address", "127.0.0.1");
        Context ctx = tomcat.addContext("", args[1]);
        AnnotationConfigWebApplicationContext app = new AnnotationConfigWebApplicationContext();
        app.register(RequestMappingHandlerMapping.class, RequestMappingHandlerAdapter.class,
                     Routes.class);
        // initialised at start, not by the first request (which a failed
        // initialisation would answer 500)
        Tomcat.addServlet(ctx, "spring", new DispatcherServlet(app)).setLoadOnStartup(1);
        ctx.addServletMappingDecoded("/", "spring");
        FilterDef fd = new FilterDef();
        fd.setFilterName("hiddenHttpMethod");
        fd.setFilter(new HiddenHttpMethodFilter());
        ctx.addFilterDef(fd);
        FilterMap fm = new FilterMap();
        fm.setFilterName("hiddenHttpMethod");
        fm.addURLPattern("/*");
        ctx.addFilterMap(fm);
        tomcat.start();
        tomcat.getServer().await();
    }
}
